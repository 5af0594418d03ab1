//! The admin page: login, sessions, CSRF, headers, who reaches what.

use super::*;

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
    page.assert_shows(429, "Too many failed attempts. Try again in");
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
