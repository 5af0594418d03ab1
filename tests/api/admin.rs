//! The admin page over HTTP: login and sessions, CSRF, permissions, and every page and form.
//! Cookies are handled by hand, as a browser would: the login form's CSRF cookie, then the
//! session cookie.

use reqwest::{
    Method,
    header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE},
};
use serde_json::json;

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, Conversation, PASSWORD, TestApp, parts, spawn_app, spawn_app_with,
};

/// An answer of the admin page.
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Page {
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("read the page"),
        }
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location on a {} answer: {}", self.status, self.body))
    }

    /// A `303 See Other` to a location starting with `to`.
    fn assert_redirect(&self, to: &str) {
        assert_eq!(
            self.status, 303,
            "expected a redirect to {to}: {}",
            self.body
        );
        assert!(
            self.location().starts_with(to),
            "redirected to {}, expected {to}",
            self.location()
        );
    }

    /// A page with `status` that says `text`.
    fn assert_shows(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(text), "{text:?} not in:\n{}", self.body);
    }

    /// The `Set-Cookie` line for `name`, if the answer sets it.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value a `Set-Cookie` gives `name`.
    fn cookie_value(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let value = line.split(';').next()?.split_once('=')?.1.to_owned();
        (!value.is_empty()).then_some(value)
    }

    /// The value of the first hidden `csrf_token` field.
    fn csrf(&self) -> String {
        field_value(&self.body, "csrf_token")
    }
}

/// The `value` of the input named `name` in a page.
fn field_value(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in:\n{body}"));
    let rest = &body[at..];
    let start = rest.find("value=\"").expect("a value") + 7;
    let end = rest[start..].find('"').expect("the value's end");
    rest[start..start + end].to_owned()
}

fn send(app: &TestApp, method: Method, path: &str, cookies: &str) -> reqwest::RequestBuilder {
    let builder = app.client.request(method, format!("{}{path}", app.address));
    if cookies.is_empty() {
        builder
    } else {
        builder.header(COOKIE, cookies)
    }
}

/// `GET /admin/login/` without cookies: the page and its CSRF cookie value.
async fn login_form(app: &TestApp) -> (Page, String) {
    let page = Page::read(
        send(app, Method::GET, "/admin/login/", "")
            .send()
            .await
            .expect("get the login form"),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = page
        .cookie_value("admin_csrf")
        .expect("the login form sets its CSRF cookie");
    (page, cookie)
}

/// Posts the login form the way a browser would (CSRF cookie and field).
async fn submit_login(app: &TestApp, username: &str, password: &str, next: &str) -> Page {
    let (form, cookie) = login_form(app).await;
    let fields = [
        ("csrf_token", form.csrf()),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
        ("next", next.to_owned()),
    ];
    Page::read(
        send(
            app,
            Method::POST,
            "/admin/login/",
            &format!("admin_csrf={cookie}"),
        )
        .form(&fields)
        .send()
        .await
        .expect("post the login form"),
    )
    .await
}

/// A signed-in admin session.
struct Admin<'a> {
    app: &'a TestApp,
    session: String,
    csrf: String,
}

impl<'a> Admin<'a> {
    async fn log_in(app: &'a TestApp, username: &str, password: &str) -> Admin<'a> {
        let page = submit_login(app, username, password, "").await;
        page.assert_redirect("/admin/");
        let session = page
            .cookie_value("admin_session")
            .expect("a session cookie");
        let mut admin = Admin {
            app,
            session,
            csrf: String::new(),
        };
        let home = admin.get("/admin/").await;
        assert_eq!(home.status, 200, "{}", home.body);
        admin.csrf = home.csrf();
        admin
    }

    async fn superuser(app: &'a TestApp) -> Admin<'a> {
        Admin::log_in(app, ADMIN, ADMIN_PASSWORD).await
    }

    fn cookies(&self) -> String {
        format!("admin_session={}", self.session)
    }

    async fn get(&self, path: &str) -> Page {
        Page::read(
            send(self.app, Method::GET, path, &self.cookies())
                .send()
                .await
                .expect("get an admin page"),
        )
        .await
    }

    /// A page that must answer 200.
    async fn page(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
        page.body
    }

    /// Posts a form with the session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &self.csrf));
        self.post_raw(path, &fields).await
    }

    /// Posts a form exactly as given (no CSRF token added).
    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        Page::read(
            send(self.app, Method::POST, path, &self.cookies())
                .form(fields)
                .send()
                .await
                .expect("post an admin form"),
        )
        .await
    }

    /// Whether the session still opens admin pages.
    async fn is_signed_in(&self) -> bool {
        let page = self.get("/admin/").await;
        match page.status {
            200 => true,
            303 => {
                page.assert_redirect("/admin/login/");
                false
            }
            other => panic!("unexpected {other}: {}", page.body),
        }
    }
}

/// Every admin page, with ids of things that exist when `ids` come from a conversation.
fn pages(user: i64, thread: i64, message: i64) -> Vec<String> {
    vec![
        "/admin/".into(),
        "/admin/users/".into(),
        "/admin/users/add/".into(),
        format!("/admin/users/{user}/"),
        format!("/admin/users/{user}/password/"),
        format!("/admin/users/{user}/delete/"),
        "/admin/threads/".into(),
        format!("/admin/threads/{thread}/"),
        format!("/admin/threads/{thread}/delete/"),
        "/admin/messages/".into(),
        format!("/admin/messages/{message}/delete/"),
    ]
}

/// Every admin form that changes something, with fields that would be accepted.
fn forms(user: i64, thread: i64, message: i64) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "/admin/users/add/".into(),
            vec![
                ("username", "mallory"),
                ("password", "Mallory-pass-1"),
                ("password2", "Mallory-pass-1"),
            ],
        ),
        (
            format!("/admin/users/{user}/"),
            vec![("username", "renamed"), ("email", "x@example.com")],
        ),
        (
            format!("/admin/users/{user}/password/"),
            vec![
                ("password", "Other-pass-99"),
                ("password2", "Other-pass-99"),
            ],
        ),
        (format!("/admin/users/{user}/delete/"), vec![]),
        (format!("/admin/threads/{thread}/delete/"), vec![]),
        (format!("/admin/messages/{message}/delete/"), vec![]),
    ]
}

/// Alice and Bob with a thread and one message from Alice; returns it and the message id.
async fn conversation_with_message(app: &TestApp) -> (Conversation, i64) {
    let conversation = app.conversation().await;
    let messages = app
        .post_messages(&conversation.alice, conversation.thread_id, &["Hello Bob"])
        .await;
    (conversation, crate::helpers::id(&messages[0]))
}

/// Asserts nothing any form of [`forms`] would do has happened.
async fn assert_untouched(app: &TestApp, conversation: &Conversation) {
    let token = app.admin_token().await;
    let (status, user) = parts(
        app.get(
            &format!("/api/users/{}/", conversation.bob_id),
            Some(&token),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "bob still exists");
    assert_eq!(user["username"], "bob");
    assert_eq!(user["email"], "");
    assert_eq!(app.message_count(&token, conversation.thread_id).await, 1);
    let page = app.get_ok("/api/users/?search=mallory", &token).await;
    assert_eq!(page["count"], 0, "nobody was added");
    app.token("bob", PASSWORD).await;
}

// ----- login, sessions, headers -----

#[tokio::test]
async fn the_login_page_is_an_accessible_form_sent_with_security_headers() {
    let app = spawn_app().await;
    let (page, _) = login_form(&app).await;
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert_eq!(header("cache-control"), "no-store");
    for field in ["username", "password"] {
        assert!(page.body.contains(&format!("<label for=\"id_{field}\">")));
        assert!(page.body.contains(&format!("id=\"id_{field}\"")));
    }
    assert!(page.body.contains(">Log in</button>"));
    assert!(!page.body.contains("<script"), "the admin runs no script");
    let cookie = page.set_cookie("admin_csrf").expect("a CSRF cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn staff_log_in_with_the_form_and_get_a_hardened_session_cookie() {
    let app = spawn_app().await;
    let page = submit_login(&app, ADMIN, ADMIN_PASSWORD, "").await;
    page.assert_redirect("/admin/");
    let cookie = page.set_cookie("admin_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        page.set_cookie("admin_csrf")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the login CSRF cookie is dropped once signed in"
    );
    let admin = Admin::superuser(&app).await;
    let home = admin.page("/admin/").await;
    assert!(home.contains("Site administration"));
    assert!(home.contains("Signed in as <strong>admin</strong>"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = spawn_app().await;
    let get = |path: &str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("x-forwarded-proto", "https")
    };
    let form = Page::read(get("/admin/login/").send().await.unwrap()).await;
    let csrf_cookie = form.set_cookie("admin_csrf").expect("a CSRF cookie");
    assert!(csrf_cookie.contains("; Secure"), "{csrf_cookie}");
    let cookie = form.cookie_value("admin_csrf").unwrap();
    let page = Page::read(
        app.client
            .post(format!("{}/admin/login/", app.address))
            .header("x-forwarded-proto", "https")
            .header(COOKIE, format!("admin_csrf={cookie}"))
            .form(&[
                ("csrf_token", form.csrf().as_str()),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    page.assert_redirect("/admin/");
    let session = page.set_cookie("admin_session").expect("a session cookie");
    assert!(session.contains("; Secure"), "{session}");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_told_on_the_page() {
    let app = spawn_app().await;
    for (username, password) in [(ADMIN, "not-the-password"), ("nobody", "whatever-pass")] {
        let page = submit_login(&app, username, password, "").await;
        page.assert_shows(400, "Wrong username or password");
        assert!(
            page.body.contains(&format!("value=\"{username}\"")),
            "typed name kept"
        );
        assert!(
            !page.body.contains(password),
            "the password is never echoed"
        );
        assert!(page.set_cookie("admin_session").is_none());
    }
}

#[tokio::test]
async fn non_staff_and_inactive_users_cannot_log_in() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let page = submit_login(&app, "alice", PASSWORD, "").await;
    page.assert_shows(403, "only staff members may log in here");
    assert!(page.set_cookie("admin_session").is_none());

    let (id, _) = app.login_new_staff("sam").await;
    let token = app.admin_token().await;
    app.patch_json(
        &format!("/api/users/{id}/"),
        Some(&token),
        &json!({"is_active": false}),
    )
    .await;
    let page = submit_login(&app, "sam", PASSWORD, "").await;
    page.assert_shows(400, "Wrong username or password");
    assert!(page.set_cookie("admin_session").is_none());
}

#[tokio::test]
async fn failed_logins_are_throttled_like_the_api() {
    let app = spawn_app_with(|config| config.login_failures_allowed = 2).await;
    for _ in 0..2 {
        submit_login(&app, ADMIN, "wrong-password", "")
            .await
            .assert_shows(400, "Wrong username or password");
    }
    let page = submit_login(&app, ADMIN, ADMIN_PASSWORD, "").await;
    page.assert_shows(
        429,
        "Too many failed attempts for this username. Try again in",
    );
    assert!(page.headers.get("retry-after").is_some());
    // One throttle for the page and the API.
    let credentials = json!({"username": ADMIN, "password": ADMIN_PASSWORD});
    let response = app.post_json("/api/token/", None, &credentials).await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn the_login_form_without_its_csrf_token_is_refused() {
    let app = spawn_app().await;
    let (form, cookie) = login_form(&app).await;
    let credentials = [("username", ADMIN), ("password", ADMIN_PASSWORD)];
    let token = form.csrf();
    let attempts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (String::new(), credentials.to_vec()),
        (format!("admin_csrf={cookie}"), credentials.to_vec()),
        (
            String::new(),
            [credentials.to_vec(), vec![("csrf_token", token.as_str())]].concat(),
        ),
        (
            format!("admin_csrf={cookie}"),
            [credentials.to_vec(), vec![("csrf_token", "forged")]].concat(),
        ),
    ];
    for (cookies, fields) in attempts {
        let page = Page::read(
            send(&app, Method::POST, "/admin/login/", &cookies)
                .form(&fields)
                .send()
                .await
                .unwrap(),
        )
        .await;
        page.assert_shows(403, "security token (CSRF)");
        assert!(page.set_cookie("admin_session").is_none());
    }
}

#[tokio::test]
async fn login_returns_to_the_page_asked_for_and_only_inside_the_admin() {
    let app = spawn_app().await;
    let page = Page::read(
        send(&app, Method::GET, "/admin/users/?q=al", "")
            .send()
            .await
            .unwrap(),
    )
    .await;
    page.assert_redirect("/admin/login/?next=%2Fadmin%2Fusers%3Fq%3Dal");
    let (form, _) = login_form(&app).await;
    assert!(form.body.contains("name=\"next\" value=\"/admin/\""));
    submit_login(&app, ADMIN, ADMIN_PASSWORD, "/admin/users?q=al")
        .await
        .assert_redirect("/admin/users?q=al");
    for elsewhere in ["https://evil.example/", "//evil.example/", "/api/me/"] {
        let page = submit_login(&app, ADMIN, ADMIN_PASSWORD, elsewhere).await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location(), "/admin/", "{elsewhere}");
    }
}

#[tokio::test]
async fn a_signed_in_visitor_of_the_login_page_goes_straight_on() {
    let app = spawn_app().await;
    let admin = Admin::superuser(&app).await;
    admin
        .get("/admin/login/?next=/admin/threads/")
        .await
        .assert_redirect("/admin/threads/");
}

#[tokio::test]
async fn anonymous_visitors_reach_no_admin_page_and_post_no_form() {
    let app = spawn_app().await;
    let (conversation, message) = conversation_with_message(&app).await;
    let (bob, thread) = (conversation.bob_id, conversation.thread_id);
    for path in pages(bob, thread, message) {
        let page = Page::read(send(&app, Method::GET, &path, "").send().await.unwrap()).await;
        page.assert_redirect("/admin/login/?next=");
    }
    for cookies in ["", "admin_session=made-up"] {
        for (path, fields) in forms(bob, thread, message) {
            let page = Page::read(
                send(&app, Method::POST, &path, cookies)
                    .form(&[fields, vec![("csrf_token", "x")]].concat())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            page.assert_shows(403, "Your session has ended");
        }
    }
    assert_untouched(&app, &conversation).await;
}

#[tokio::test]
async fn a_session_that_lost_staff_status_reaches_no_admin_page() {
    let app = spawn_app().await;
    let (conversation, message) = conversation_with_message(&app).await;
    let (sam_id, _) = app.login_new_staff("sam").await;
    let sam = Admin::log_in(&app, "sam", PASSWORD).await;
    let (bob, thread) = (conversation.bob_id, conversation.thread_id);
    for path in pages(bob, thread, message) {
        assert_eq!(sam.get(&path).await.status, 200, "staff open {path}");
    }

    let token = app.admin_token().await;
    let demote = json!({"is_staff": false});
    app.patch_json(&format!("/api/users/{sam_id}/"), Some(&token), &demote)
        .await;
    for path in pages(bob, thread, message) {
        sam.get(&path).await.assert_redirect("/admin/login/");
    }
    for (path, fields) in forms(bob, thread, message) {
        sam.post(&path, &fields)
            .await
            .assert_shows(403, "Your session has ended");
    }
    assert_untouched(&app, &conversation).await;

    // Made staff again, sam logs in anew: the old session stays ended.
    let promote = json!({"is_staff": true});
    app.patch_json(&format!("/api/users/{sam_id}/"), Some(&token), &promote)
        .await;
    assert!(!sam.is_signed_in().await);
}

#[tokio::test]
async fn deactivation_deletion_and_a_new_password_end_admin_sessions() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let mut sessions = Vec::new();
    for name in ["sam", "sue", "syd"] {
        let (id, _) = app.login_new_staff(name).await;
        sessions.push((id, Admin::log_in(&app, name, PASSWORD).await));
    }
    for (_, session) in &sessions {
        assert!(session.is_signed_in().await);
    }
    let [(sam, _), (sue, _), (syd, _)] = [&sessions[0], &sessions[1], &sessions[2]];
    app.patch_json(
        &format!("/api/users/{sam}/"),
        Some(&token),
        &json!({"is_active": false}),
    )
    .await;
    app.delete(&format!("/api/users/{sue}/"), Some(&token))
        .await;
    app.patch_json(
        &format!("/api/users/{syd}/"),
        Some(&token),
        &json!({"password": "Brand-new-pass-1"}),
    )
    .await;
    for (_, session) in &sessions {
        assert!(!session.is_signed_in().await);
    }
}

#[tokio::test]
async fn logging_out_needs_the_token_and_ends_the_session() {
    let app = spawn_app().await;
    let admin = Admin::superuser(&app).await;
    admin
        .post_raw("/admin/logout/", &[])
        .await
        .assert_shows(403, "security token (CSRF)");
    assert!(
        admin.is_signed_in().await,
        "a forged logout changes nothing"
    );

    let page = admin.post("/admin/logout/", &[]).await;
    page.assert_redirect("/admin/login/?logged_out=1");
    let gone = page
        .set_cookie("admin_session")
        .expect("the cookie is removed");
    assert!(gone.contains("Max-Age=0"), "{gone}");
    assert!(
        !admin.is_signed_in().await,
        "the old cookie no longer works"
    );
    let (form, _) = login_form(&app).await;
    assert!(!form.body.contains("You have been logged out."));
    let notice = Page::read(
        send(&app, Method::GET, "/admin/login/?logged_out=1", "")
            .send()
            .await
            .unwrap(),
    )
    .await;
    notice.assert_shows(200, "You have been logged out.");
    // Logging out without a session just leads to the login.
    admin
        .post("/admin/logout/", &[])
        .await
        .assert_redirect("/admin/login/");
}

#[tokio::test]
async fn every_form_refuses_a_post_without_the_right_csrf_token() {
    let app = spawn_app().await;
    let (conversation, message) = conversation_with_message(&app).await;
    let admin = Admin::superuser(&app).await;
    let (bob, thread) = (conversation.bob_id, conversation.thread_id);
    for (path, fields) in forms(bob, thread, message) {
        admin
            .post_raw(&path, &fields)
            .await
            .assert_shows(403, "security token (CSRF)");
        let forged = [fields.clone(), vec![("csrf_token", "forged-token")]].concat();
        admin
            .post_raw(&path, &forged)
            .await
            .assert_shows(403, "security token (CSRF)");
    }
    // Another session's token is no good either.
    let other = Admin::superuser(&app).await;
    assert_ne!(other.csrf, admin.csrf);
    let (path, fields) = &forms(bob, thread, message)[0];
    let foreign = [fields.clone(), vec![("csrf_token", other.csrf.as_str())]].concat();
    admin
        .post_raw(path, &foreign)
        .await
        .assert_shows(403, "security token (CSRF)");
    assert_untouched(&app, &conversation).await;
}

#[tokio::test]
async fn unknown_admin_pages_and_ids_are_html_404s() {
    let app = spawn_app().await;
    let admin = Admin::superuser(&app).await;
    for path in [
        "/admin/nope/",
        "/admin/users/999/",
        "/admin/users/abc/",
        "/admin/users/0/password/",
        "/admin/threads/999/",
        "/admin/threads/-1/delete/",
        "/admin/messages/999/delete/",
    ] {
        let page = admin.get(path).await;
        page.assert_shows(404, "Page not found");
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    admin
        .post("/admin/messages/999/delete/", &[])
        .await
        .assert_shows(404, "Page not found");
}

#[tokio::test]
async fn the_stylesheet_is_embedded_and_the_home_page_counts() {
    let app = spawn_app().await;
    let css = app
        .client
        .get(format!("{}/admin/static/admin.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.text().await.unwrap().contains(":focus-visible"));

    conversation_with_message(&app).await;
    let admin = Admin::superuser(&app).await;
    let home = admin.page("/admin/").await;
    for count in [
        "<p class=\"stat-number\">3</p>",
        "<p class=\"stat-number\">1</p>",
    ] {
        assert!(home.contains(count), "{count} in {home}");
    }
}

// ----- users -----

#[tokio::test]
async fn add_user_leads_to_the_detail_form_and_the_user_can_sign_in_at_once() {
    let app = spawn_app().await;
    let admin = Admin::superuser(&app).await;
    let form = admin.page("/admin/users/add/").await;
    for field in ["username", "password", "password2"] {
        assert!(
            form.contains(&format!("<label for=\"id_{field}\">")),
            "{field}"
        );
    }
    let page = admin
        .post(
            "/admin/users/add/",
            &[
                ("username", "carol"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    page.assert_redirect("/admin/users/");
    let detail = admin.page(page.location()).await;
    assert!(detail.contains("The user “carol” was added."), "{detail}");
    for field in [
        "email",
        "first_name",
        "last_name",
        "is_active",
        "is_staff",
        "is_superuser",
    ] {
        assert!(detail.contains(&format!("id=\"id_{field}\"")), "{field}");
    }
    assert!(detail.contains("Date joined") && detail.contains("Last login"));
    let again = admin.page(page.location()).await;
    assert!(!again.contains("was added"), "a message is shown once");

    let token = app.token("carol", PASSWORD).await;
    let me = app.get_ok("/api/me/", &token).await;
    assert_eq!(me["is_active"], true);
    assert_eq!(me["is_staff"], false);
}

#[tokio::test]
async fn add_user_shows_each_broken_rule_next_to_its_field_and_keeps_the_username() {
    let app = spawn_app().await;
    app.create_user("taken", PASSWORD).await;
    let admin = Admin::superuser(&app).await;
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        (
            "carol",
            "Secret-pass-1",
            "Secret-pass-2",
            &["id_password2_errors", "didn’t match"],
        ),
        (
            "carol",
            "1234",
            "1234",
            &["id_password_errors", "too short", "entirely numeric"],
        ),
        (
            "carolcarol",
            "CarolCarol",
            "CarolCarol",
            &["too similar to the username"],
        ),
        (
            "bad name!",
            PASSWORD,
            PASSWORD,
            &["id_username_errors", "Enter a valid username"],
        ),
        (
            "taken",
            PASSWORD,
            PASSWORD,
            &["id_username_errors", "already exists"],
        ),
    ];
    for (username, password, again, expected) in cases {
        let page = admin
            .post(
                "/admin/users/add/",
                &[
                    ("username", username),
                    ("password", password),
                    ("password2", again),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{username}: {}", page.body);
        for text in expected {
            assert!(
                page.body.contains(text),
                "{text:?} for {username}:\n{}",
                page.body
            );
        }
        assert_eq!(field_value(&page.body, "username"), username);
        assert!(
            !page.body.contains(password),
            "a password is never sent back"
        );
        assert!(page.body.contains("aria-invalid=\"true\""));
    }
    let token = app.admin_token().await;
    let found = app.get_ok("/api/users/?search=carol", &token).await;
    assert_eq!(found["count"], 0);
}

#[tokio::test]
async fn the_detail_form_saves_email_names_and_status_through_the_account_rules() {
    let app = spawn_app().await;
    let (bob, bob_token) = app.login_new_user("bob").await;
    let admin = Admin::superuser(&app).await;
    let page = admin
        .post(
            &format!("/admin/users/{bob}/"),
            &[
                ("username", "bob"),
                ("email", "bob@example.com"),
                ("first_name", "Bob"),
                ("last_name", "Builder"),
                ("is_active", "on"),
                ("is_staff", "on"),
            ],
        )
        .await;
    page.assert_redirect(&format!("/admin/users/{bob}/"));
    assert!(
        admin
            .page(page.location())
            .await
            .contains("The user “bob” was saved.")
    );
    let token = app.admin_token().await;
    let user = app.get_ok(&format!("/api/users/{bob}/"), &token).await;
    assert_eq!(user["email"], "bob@example.com");
    assert_eq!(user["first_name"], "Bob");
    assert_eq!(user["last_name"], "Builder");
    assert_eq!(user["is_staff"], true);
    assert_eq!(user["is_superuser"], false);
    assert_eq!(app.get("/api/me/", Some(&bob_token)).await.status(), 200);

    // Unticking "Active" ends the user's tokens at once.
    admin
        .post(&format!("/admin/users/{bob}/"), &[("username", "bob")])
        .await
        .assert_redirect("/admin/users/");
    let user = app.get_ok(&format!("/api/users/{bob}/"), &token).await;
    assert_eq!(user["is_active"], false);
    assert_eq!(user["is_staff"], false);
    assert_eq!(app.get("/api/me/", Some(&bob_token)).await.status(), 401);
}

#[tokio::test]
async fn the_detail_form_shows_errors_next_to_fields_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let (bob, _) = app.login_new_user("bob").await;
    let admin = Admin::superuser(&app).await;
    let page = admin
        .post(
            &format!("/admin/users/{bob}/"),
            &[
                ("username", "bob the builder"),
                ("email", "not-an-email"),
                ("first_name", "Bobby"),
                ("is_active", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("id=\"id_email_errors\""));
    assert!(page.body.contains("Enter a valid email address."));
    assert!(page.body.contains("id=\"id_username_errors\""));
    assert_eq!(field_value(&page.body, "email"), "not-an-email");
    assert_eq!(field_value(&page.body, "first_name"), "Bobby");
    assert_eq!(field_value(&page.body, "username"), "bob the builder");
    let token = app.admin_token().await;
    let user = app.get_ok(&format!("/api/users/{bob}/"), &token).await;
    assert_eq!(user["first_name"], "", "nothing saved");
}

#[tokio::test]
async fn only_superusers_manage_superusers_and_superuser_status() {
    let app = spawn_app().await;
    let (bob, _) = app.login_new_user("bob").await;
    app.login_new_staff("sam").await;
    let token = app.admin_token().await;
    let root = app.get_ok("/api/me/", &token).await["id"].as_i64().unwrap();
    let sam = Admin::log_in(&app, "sam", PASSWORD).await;

    // A superuser's account: visible, not changeable.
    let detail = sam.page(&format!("/admin/users/{root}/")).await;
    assert!(detail.contains("Only a superuser may change a superuser’s account."));
    assert!(!detail.contains(">Save</button>"));
    sam.post(&format!("/admin/users/{root}/"), &[("username", "root2")])
        .await
        .assert_shows(
            403,
            "Only a superuser may change superuser accounts or status.",
        );
    for path in [
        format!("/admin/users/{root}/password/"),
        format!("/admin/users/{root}/delete/"),
    ] {
        sam.get(&path).await.assert_shows(403, "Only a superuser");
        sam.post(
            &path,
            &[("password", "Whatever-1"), ("password2", "Whatever-1")],
        )
        .await
        .assert_shows(403, "Only a superuser");
    }
    // Superuser status: the box is disabled, and a forged one is refused.
    let detail = sam.page(&format!("/admin/users/{bob}/")).await;
    assert!(
        detail.contains("name=\"is_superuser\" value=\"on\" disabled"),
        "{detail}"
    );
    sam.post(
        &format!("/admin/users/{bob}/"),
        &[
            ("username", "bob"),
            ("is_active", "on"),
            ("is_superuser", "on"),
        ],
    )
    .await
    .assert_shows(403, "Only a superuser");
    let user = app.get_ok(&format!("/api/users/{bob}/"), &token).await;
    assert_eq!(user["is_superuser"], false);

    // A superuser may.
    let admin = Admin::superuser(&app).await;
    admin
        .post(
            &format!("/admin/users/{bob}/"),
            &[
                ("username", "bob"),
                ("is_active", "on"),
                ("is_superuser", "on"),
            ],
        )
        .await
        .assert_redirect("/admin/users/");
    let user = app.get_ok(&format!("/api/users/{bob}/"), &token).await;
    assert_eq!(user["is_superuser"], true);
}

#[tokio::test]
async fn nobody_changes_their_own_status_or_deletes_themselves() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let me = app.get_ok("/api/me/", &token).await["id"].as_i64().unwrap();
    let admin = Admin::superuser(&app).await;
    let detail = admin.page(&format!("/admin/users/{me}/")).await;
    assert!(detail.contains("You cannot change your own status here"));
    assert!(!detail.contains("Delete user"));
    // The boxes are disabled, so they are not sent: nothing changes.
    admin
        .post(
            &format!("/admin/users/{me}/"),
            &[("username", ADMIN), ("email", "root@example.com")],
        )
        .await
        .assert_redirect(&format!("/admin/users/{me}/"));
    let user = app.get_ok("/api/me/", &token).await;
    assert_eq!(user["email"], "root@example.com");
    assert_eq!(
        (
            user["is_active"].clone(),
            user["is_staff"].clone(),
            user["is_superuser"].clone()
        ),
        (json!(true), json!(true), json!(true))
    );
    assert!(admin.is_signed_in().await);
    for page in [
        admin.get(&format!("/admin/users/{me}/delete/")).await,
        admin.post(&format!("/admin/users/{me}/delete/"), &[]).await,
    ] {
        page.assert_shows(403, "You cannot delete your own account.");
    }
}

#[tokio::test]
async fn set_password_checks_the_rules_and_replaces_the_old_password() {
    let app = spawn_app().await;
    let (bob, _) = app.login_new_user("bob").await;
    let admin = Admin::superuser(&app).await;
    let path = format!("/admin/users/{bob}/password/");
    let form = admin.page(&path).await;
    assert!(form.contains("<label for=\"id_password2\">"));
    for (password, again, expected) in [
        ("New-pass-123", "New-pass-321", "didn’t match"),
        ("Zq9", "Zq9", "too short"),
        ("99999999", "99999999", "entirely numeric"),
    ] {
        let page = admin
            .post(&path, &[("password", password), ("password2", again)])
            .await;
        page.assert_shows(400, expected);
        assert!(!page.body.contains(password));
    }
    app.token("bob", PASSWORD).await;
    let page = admin
        .post(
            &path,
            &[("password", "New-pass-123"), ("password2", "New-pass-123")],
        )
        .await;
    page.assert_redirect(&format!("/admin/users/{bob}/"));
    assert!(
        admin
            .page(page.location())
            .await
            .contains("The password of “bob” was changed.")
    );
    let credentials = json!({"username": "bob", "password": PASSWORD});
    assert_eq!(
        app.post_json("/api/token/", None, &credentials)
            .await
            .status(),
        401
    );
    app.token("bob", "New-pass-123").await;
}

#[tokio::test]
async fn changing_ones_own_password_keeps_one_signed_in_on_a_new_session() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let me = app.get_ok("/api/me/", &token).await["id"].as_i64().unwrap();
    let mut admin = Admin::superuser(&app).await;
    let other = Admin::superuser(&app).await;
    let page = admin
        .post(
            &format!("/admin/users/{me}/password/"),
            &[
                ("password", "Fresh-pass-456"),
                ("password2", "Fresh-pass-456"),
            ],
        )
        .await;
    page.assert_redirect(&format!("/admin/users/{me}/"));
    let fresh = page.cookie_value("admin_session").expect("a new session");
    assert!(!admin.is_signed_in().await, "the old session ended");
    assert!(!other.is_signed_in().await, "so did the other one");
    admin.session = fresh;
    let detail = admin.page(page.location()).await;
    assert!(detail.contains("The password of “admin” was changed."));
    app.token(ADMIN, "Fresh-pass-456").await;
}

#[tokio::test]
async fn deleting_a_user_asks_first_then_takes_their_threads_along() {
    let app = spawn_app().await;
    let (conversation, _) = conversation_with_message(&app).await;
    let admin = Admin::superuser(&app).await;
    let path = format!("/admin/users/{}/delete/", conversation.bob_id);
    let confirm = admin.page(&path).await;
    assert!(confirm.contains("Delete the user “bob”?"));
    assert!(confirm.contains("1 conversation with everything in it will be deleted too."));
    assert!(confirm.contains(">Yes, delete bob</button>"));
    assert!(confirm.contains(&format!("href=\"/admin/users/{}/\"", conversation.bob_id)));
    let page = admin.post(&path, &[]).await;
    page.assert_redirect("/admin/users/");
    assert!(
        admin
            .page("/admin/users/")
            .await
            .contains("The user “bob” was deleted.")
    );
    let token = app.admin_token().await;
    let gone = app
        .get(
            &format!("/api/users/{}/", conversation.bob_id),
            Some(&token),
        )
        .await;
    assert_eq!(gone.status(), 404);
    let thread = app
        .get(
            &format!("/chat/thread/{}/", conversation.thread_id),
            Some(&token),
        )
        .await;
    assert_eq!(thread.status(), 404);
    admin
        .post(&path, &[])
        .await
        .assert_shows(404, "Page not found");
}

#[tokio::test]
async fn the_user_list_searches_filters_and_pages() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (name, email, first, last) in [
        ("alice", "alice@wonder.land", "Alice", "Liddell"),
        ("bob", "bob@builder.example", "Robert", "Builder"),
    ] {
        let body = json!({"username": name, "password": PASSWORD, "email": email,
                          "first_name": first, "last_name": last});
        assert_eq!(
            app.post_json("/api/users/", Some(&token), &body)
                .await
                .status(),
            201
        );
    }
    let (carol, _) = app.login_new_staff("carol").await;
    app.patch_json(
        &format!("/api/users/{carol}/"),
        Some(&token),
        &json!({"is_active": false}),
    )
    .await;
    let admin = Admin::superuser(&app).await;
    let listed = |body: &str, name: &str| body.contains(&format!("\">{name}</a></th>"));

    let all = admin.page("/admin/users/").await;
    for name in ["admin", "alice", "bob", "carol"] {
        assert!(listed(&all, name), "{name}");
    }
    assert!(all.contains("<th scope=\"col\">Username</th>"));
    for (query, expected) in [
        ("q=ali", vec!["alice"]),
        ("q=BUILDER.example", vec!["bob"]),
        ("q=robert", vec!["bob"]),
        ("q=liddell", vec!["alice"]),
        ("q=nobody", vec![]),
        ("active=no", vec!["carol"]),
        ("staff=yes", vec!["admin", "carol"]),
        ("staff=yes&active=yes", vec!["admin"]),
        ("superuser=yes", vec!["admin"]),
        ("superuser=no&staff=no", vec!["alice", "bob"]),
    ] {
        let body = admin.page(&format!("/admin/users/?{query}")).await;
        for name in ["admin", "alice", "bob", "carol"] {
            assert_eq!(
                listed(&body, name),
                expected.contains(&name),
                "{name} for {query}"
            );
        }
    }
    let none = admin.page("/admin/users/?q=nobody").await;
    assert!(none.contains("No users found."));
    assert!(
        none.contains("value=\"nobody\""),
        "the search is kept in its box"
    );

    for i in 0..24 {
        app.create_user(&format!("user{i:02}"), PASSWORD).await;
    }
    let first = admin.page("/admin/users/").await;
    assert!(first.contains("Showing <strong>1–25</strong> of <strong>28</strong> users"));
    assert!(first.contains("Page 1 of 2"));
    let second = admin.page("/admin/users/?page=2").await;
    assert!(second.contains("Showing <strong>26–28</strong> of <strong>28</strong> users"));
    let filtered = admin.page("/admin/users/?q=e&active=yes").await;
    assert!(
        filtered.contains("of <strong>26</strong> users"),
        "{filtered}"
    );
    assert!(filtered.contains("href=\"/admin/users/?q=e&amp;active=yes&amp;page=2\""));
    let beyond = admin.page("/admin/users/?page=99").await;
    assert!(beyond.contains("No users found."));
    let nonsense = admin.page("/admin/users/?page=abc").await;
    assert!(nonsense.contains("Page 1 of 2"));
}

#[tokio::test]
async fn what_users_typed_is_escaped_on_every_page() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"username": "eve", "password": PASSWORD,
                      "first_name": "<script>alert(1)</script>"});
    let (status, eve) = parts(app.post_json("/api/users/", Some(&token), &body).await).await;
    assert_eq!(status, 201);
    let admin = Admin::superuser(&app).await;
    for path in [
        "/admin/users/".to_owned(),
        format!("/admin/users/{}/", eve["id"]),
    ] {
        let page = admin.page(&path).await;
        assert!(!page.contains("<script>"), "{path}: {page}");
        assert!(page.contains("&lt;script&gt;"), "{path}");
    }
}

// ----- threads and messages -----

#[tokio::test]
async fn the_thread_list_shows_participants_counts_and_activity_and_searches_usernames() {
    let app = spawn_app().await;
    let (conversation, _) = conversation_with_message(&app).await;
    app.post_messages(&conversation.bob, conversation.thread_id, &["Hi", "Lunch?"])
        .await;
    let admin = Admin::superuser(&app).await;
    let list = admin.page("/admin/threads/").await;
    for column in ["Participants", "Messages", "Last activity"] {
        assert!(list.contains(&format!(">{column}</th>")), "{column}");
    }
    assert!(list.contains(&format!(">Thread #{}</a>", conversation.thread_id)));
    assert!(list.contains(">alice</a>") && list.contains(">bob</a>"));
    assert!(list.contains("<td class=\"numeric\">3</td>"), "{list}");
    assert!(list.contains("<time datetime=\""));
    assert!(
        admin
            .page("/admin/threads/?q=ALI")
            .await
            .contains("Thread #")
    );
    let none = admin.page("/admin/threads/?q=zed").await;
    assert!(none.contains("No threads found."));

    // 26 threads of one user: two pages, most recent activity first.
    let (_, hub) = app.login_new_user("hub").await;
    for i in 0..26 {
        let name = format!("peer{i:02}");
        app.create_user(&name, PASSWORD).await;
        app.create_thread(&hub, "hub", &name).await;
    }
    let first = admin.page("/admin/threads/?q=hub").await;
    assert!(first.contains("Showing <strong>1–25</strong> of <strong>26</strong> threads"));
    assert!(first.find(">peer25</a>").unwrap() < first.find(">peer01</a>").unwrap());
    let second = admin.page("/admin/threads/?q=hub&page=2").await;
    assert!(second.contains(">peer00</a>") && !second.contains(">peer01</a>"));
}

#[tokio::test]
async fn a_thread_page_shows_its_messages_in_pages() {
    let app = spawn_app().await;
    let conversation = app.conversation().await;
    let texts: Vec<String> = (1..=55).map(|i| format!("note {i:02}")).collect();
    app.post_messages(&conversation.alice, conversation.thread_id, &texts)
        .await;
    let admin = Admin::superuser(&app).await;
    let path = format!("/admin/threads/{}/", conversation.thread_id);
    let first = admin.page(&path).await;
    assert!(first.contains("alice &amp; bob"));
    assert!(first.contains("note 01") && first.contains("note 50"));
    assert!(!first.contains("note 51"));
    assert!(first.contains("Showing <strong>1–50</strong> of <strong>55</strong> messages"));
    assert!(first.contains(">Unread</span>"));
    let second = admin.page(&format!("{path}?page=2")).await;
    assert!(second.contains("note 51") && second.contains("note 55"));
    assert!(!second.contains("note 50"));
    assert!(second.contains("/delete/?next="), "{second}");
    assert!(
        second.contains("%3Fpage%3D2\""),
        "deleting comes back to this page"
    );
}

#[tokio::test]
async fn deleting_a_thread_asks_first_and_removes_it_for_both() {
    let app = spawn_app().await;
    let (conversation, _) = conversation_with_message(&app).await;
    let admin = Admin::superuser(&app).await;
    let path = format!("/admin/threads/{}/delete/", conversation.thread_id);
    let confirm = admin.page(&path).await;
    assert!(confirm.contains("Delete the thread of alice and bob?"));
    assert!(confirm.contains("Its 1 message will be deleted too."));
    assert!(confirm.contains(">Yes, delete the thread</button>"));
    let page = admin.post(&path, &[]).await;
    page.assert_redirect("/admin/threads/");
    assert!(
        admin
            .page("/admin/threads/")
            .await
            .contains("The thread of alice and bob was deleted with its messages.")
    );
    assert!(
        app.thread_ids(&conversation.alice, conversation.alice_id)
            .await
            .is_empty()
    );
    assert!(
        app.thread_ids(&conversation.bob, conversation.bob_id)
            .await
            .is_empty()
    );
    admin
        .post(&path, &[])
        .await
        .assert_shows(404, "Page not found");
}

#[tokio::test]
async fn the_message_list_searches_text_and_filters_read_and_unread() {
    let app = spawn_app().await;
    let conversation = app.conversation().await;
    let sent = app
        .post_messages(
            &conversation.alice,
            conversation.thread_id,
            &["Lunch at noon?", "Bring the report", "100% sure_thing"],
        )
        .await;
    let first = crate::helpers::id(&sent[0]);
    let marked = app
        .post_json(
            "/message/",
            Some(&conversation.bob),
            &json!({"messages_ids": [first]}),
        )
        .await;
    assert_eq!(marked.status(), 200);
    let admin = Admin::superuser(&app).await;
    let all = admin.page("/admin/messages/").await;
    assert!(all.find("100% sure_thing").unwrap() < all.find("Lunch at noon?").unwrap());
    for column in ["Message", "From", "To", "Thread", "Sent", "Status"] {
        assert!(all.contains(&format!(">{column}</th>")), "{column}");
    }
    for (query, expected) in [
        ("q=lunch", vec!["Lunch at noon?"]),
        ("q=%25", vec!["100% sure_thing"]),
        ("q=_", vec!["100% sure_thing"]),
        ("read=read", vec!["Lunch at noon?"]),
        ("read=unread", vec!["Bring the report", "100% sure_thing"]),
        ("read=unread&q=report", vec!["Bring the report"]),
        ("q=nothing", vec![]),
    ] {
        let body = admin.page(&format!("/admin/messages/?{query}")).await;
        for text in ["Lunch at noon?", "Bring the report", "100% sure_thing"] {
            assert_eq!(
                body.contains(text),
                expected.contains(&text),
                "{text} for {query}"
            );
        }
    }
    assert!(
        admin
            .page("/admin/messages/?q=nothing")
            .await
            .contains("No messages found.")
    );
}

#[tokio::test]
async fn deleting_a_message_keeps_the_thread_and_unread_counts_consistent() {
    let app = spawn_app().await;
    let conversation = app.conversation().await;
    let thread = conversation.thread_id;
    let sent = app
        .post_messages(&conversation.alice, thread, &["one", "two", "three"])
        .await;
    let ids: Vec<i64> = sent.iter().map(crate::helpers::id).collect();
    app.post_json(
        "/message/",
        Some(&conversation.bob),
        &json!({"messages_ids": [ids[0]]}),
    )
    .await;
    assert_eq!(
        app.unread_count(&conversation.bob, conversation.bob_id)
            .await,
        2
    );
    let admin = Admin::superuser(&app).await;

    // The newest, unread: count, last message and bob's unread go down.
    let back = format!("/admin/threads/{thread}/");
    let confirm = admin
        .page(&format!("/admin/messages/{}/delete/?next={back}", ids[2]))
        .await;
    assert!(confirm.contains("Delete this message?") && confirm.contains("three"));
    assert!(confirm.contains(&format!("name=\"next\" value=\"{back}\"")));
    let page = admin
        .post(
            &format!("/admin/messages/{}/delete/", ids[2]),
            &[("next", back.as_str())],
        )
        .await;
    page.assert_redirect(&back);
    assert!(admin.page(&back).await.contains(&format!(
        "Message #{} was deleted from thread #{thread}.",
        ids[2]
    )));
    let bob = &conversation.bob;
    assert_eq!(app.message_count(bob, thread).await, 2);
    assert_eq!(app.unread_count(bob, conversation.bob_id).await, 1);
    let view = app.get_ok(&format!("/chat/thread/{thread}/"), bob).await;
    assert_eq!(view["last_message"]["id"], ids[1]);
    assert_eq!(view["unread_count"], 1);

    // A read one: the unread count stays.
    admin
        .post(&format!("/admin/messages/{}/delete/", ids[0]), &[])
        .await
        .assert_redirect("/admin/messages/");
    assert_eq!(app.message_count(bob, thread).await, 1);
    assert_eq!(app.unread_count(bob, conversation.bob_id).await, 1);

    // The last one: an empty thread with no last message.
    admin
        .post(
            &format!("/admin/messages/{}/delete/", ids[1]),
            &[("next", "https://evil.example/")],
        )
        .await
        .assert_redirect("/admin/messages/");
    let view = app.get_ok(&format!("/chat/thread/{thread}/"), bob).await;
    assert_eq!(view["last_message"], serde_json::Value::Null);
    assert_eq!(view["unread_count"], 0);
    assert_eq!(app.unread_count(bob, conversation.bob_id).await, 0);
    let list = admin.page("/admin/threads/").await;
    assert!(list.contains("<td class=\"numeric\">0</td>"));
}
