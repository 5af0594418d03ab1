//! The admin page: adding, changing, listing and deleting users.

use super::*;

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
