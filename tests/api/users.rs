//! Users: staff manage them through `/api/users/`, everyone can look them up, `/api/me/`.

use serde_json::{Value, json};

use crate::helpers::{
    PAGE_KEYS, PASSWORD, TestApp, USER_KEYS, assert_detail, assert_field_error, assert_keys,
    assert_timestamp, id, parts, results, spawn_app,
};

/// Total number of users, as staff see it.
async fn user_count(app: &TestApp, staff_token: &str) -> i64 {
    app.get_ok("/api/users/", staff_token).await["count"]
        .as_i64()
        .expect("a user count")
}

/// Usernames found by `GET /api/users/?search=<term>`.
async fn search(app: &TestApp, token: &str, term: &str) -> Vec<String> {
    let page = app
        .get_ok(&format!("/api/users/?search={term}"), token)
        .await;
    let mut names: Vec<String> = results(&page)
        .iter()
        .map(|user| user["username"].as_str().expect("a username").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn staff_can_create_a_user() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let new_user = json!({
        "username": "dave",
        "password": PASSWORD,
        "email": "dave@example.com",
        "first_name": "Dave",
        "last_name": "Jones",
    });

    let (status, body) = parts(app.post_json("/api/users/", Some(&admin), &new_user).await).await;

    assert_eq!(status, 201, "{body}");
    assert_keys(&body, USER_KEYS);
    assert_eq!(body["username"], "dave");
    assert_eq!(body["email"], "dave@example.com");
    assert_eq!(body["first_name"], "Dave");
    assert_eq!(body["last_name"], "Jones");
    assert_eq!(body["is_active"], json!(true));
    assert_eq!(body["is_staff"], json!(false));
    assert_eq!(body["is_superuser"], json!(false));
    assert_timestamp(&body["date_joined"]);
    assert_eq!(body["last_login"], Value::Null);
    assert!(
        !body.to_string().contains(PASSWORD),
        "the password never comes back: {body}"
    );
}

#[tokio::test]
async fn a_created_user_can_sign_in() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, created) = parts(
        app.post_json(
            "/api/users/",
            Some(&admin),
            &json!({"username": "dave", "password": PASSWORD}),
        )
        .await,
    )
    .await;

    let token = app.token("dave", PASSWORD).await;

    let me = app.get_ok("/api/me/", &token).await;
    assert_eq!(id(&me), id(&created));
    assert_eq!(me["email"], "");
}

#[tokio::test]
async fn a_staff_member_who_is_not_a_superuser_can_create_users() {
    let app = spawn_app().await;
    let (_, staff) = app.login_new_staff("sam").await;

    let (status, body) = parts(
        app.post_json(
            "/api/users/",
            Some(&staff),
            &json!({"username": "dave", "password": PASSWORD}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], "dave");
}

#[tokio::test]
async fn staff_can_create_staff_and_inactive_users() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let (staff_status, staff_user) = parts(
        app.post_json(
            "/api/users/",
            Some(&admin),
            &json!({"username": "sam", "password": PASSWORD, "is_staff": true}),
        )
        .await,
    )
    .await;
    let (inactive_status, inactive_user) = parts(
        app.post_json(
            "/api/users/",
            Some(&admin),
            &json!({"username": "ivy", "password": PASSWORD, "is_active": false}),
        )
        .await,
    )
    .await;

    assert_eq!(staff_status, 201, "{staff_user}");
    assert_eq!(staff_user["is_staff"], json!(true));
    assert_eq!(staff_user["is_superuser"], json!(false));
    assert_eq!(inactive_status, 201, "{inactive_user}");
    assert_eq!(inactive_user["is_active"], json!(false));
    let (login, _) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "ivy", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(login, 401, "an inactive user cannot sign in");
}

#[tokio::test]
async fn a_non_staff_user_cannot_create_users() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;
    let admin = app.admin_token().await;
    let before = user_count(&app, &admin).await;

    let (status, body) = parts(
        app.post_json(
            "/api/users/",
            Some(&alice),
            &json!({"username": "dave", "password": PASSWORD}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 403, "{body}");
    assert_detail(&body);
    assert_eq!(user_count(&app, &admin).await, before);
}

#[tokio::test]
async fn a_taken_username_is_refused() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let admin = app.admin_token().await;

    let (status, body) = parts(
        app.post_json(
            "/api/users/",
            Some(&admin),
            &json!({"username": "alice", "password": "Other-pass-55"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "username");
    // The existing account is untouched.
    let token = app.token("alice", PASSWORD).await;
    assert_eq!(id(&app.get_ok("/api/me/", &token).await), alice_id);
}

#[tokio::test]
async fn invalid_usernames_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = user_count(&app, &admin).await;
    let too_long = "a".repeat(151);

    for username in [
        "bad name!",
        too_long.as_str(),
        "",
        "slash/name",
        "tab\tname",
        "smile😀",
        "semi;colon",
    ] {
        let (status, body) = parts(
            app.post_json(
                "/api/users/",
                Some(&admin),
                &json!({"username": username, "password": PASSWORD}),
            )
            .await,
        )
        .await;

        assert_eq!(status, 400, "username {username:?}: {body}");
        assert_field_error(&body, "username");
    }
    assert_eq!(user_count(&app, &admin).await, before);
}

#[tokio::test]
async fn usernames_within_the_rules_are_accepted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let longest = "a".repeat(150);

    for username in [longest.as_str(), "x", "user.name+tag@ex-ample_1", "Zoe2"] {
        let (status, body) = parts(
            app.post_json(
                "/api/users/",
                Some(&admin),
                &json!({"username": username, "password": PASSWORD}),
            )
            .await,
        )
        .await;

        assert_eq!(status, 201, "username {username:?}: {body}");
        assert_eq!(body["username"], username);
    }
}

#[tokio::test]
async fn passwords_that_break_the_rules_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = user_count(&app, &admin).await;

    for password in ["Short-1", "12345678901", "FRANK-LIN9", "frank-lin9"] {
        let (status, body) = parts(
            app.post_json(
                "/api/users/",
                Some(&admin),
                &json!({"username": "frank-lin9", "password": password}),
            )
            .await,
        )
        .await;

        assert_eq!(status, 400, "password {password:?}: {body}");
        assert_field_error(&body, "password");
    }
    assert_eq!(user_count(&app, &admin).await, before);
}

#[tokio::test]
async fn username_and_password_are_required() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let (status, body) = parts(
        app.post_json(
            "/api/users/",
            Some(&admin),
            &json!({"email": "x@example.com"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["username"], json!(["This field is required."]));
    assert_eq!(body["password"], json!(["This field is required."]));
}

#[tokio::test]
async fn a_non_staff_search_shows_only_ids_and_usernames() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    app.create_user("alicia", PASSWORD).await;
    let (_, bob) = app.login_new_user("bob").await;

    let page = app.get_ok("/api/users/?search=ali", &bob).await;

    assert_keys(&page, PAGE_KEYS);
    assert_eq!(page["count"], json!(2));
    for user in results(&page) {
        assert_keys(user, &["id", "username"]);
    }
    assert!(
        results(&page).contains(&json!({"id": alice_id, "username": "alice"})),
        "{page}"
    );
    assert_eq!(search(&app, &bob, "ali").await, ["alice", "alicia"]);
}

#[tokio::test]
async fn a_staff_search_shows_full_users() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let (_, staff) = app.login_new_staff("sam").await;

    let page = app.get_ok("/api/users/?search=alice", &staff).await;

    assert_eq!(page["count"], json!(1));
    let user = &results(&page)[0];
    assert_keys(user, USER_KEYS);
    assert_eq!(user["username"], "alice");
}

#[tokio::test]
async fn search_ignores_case() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (_, bob) = app.login_new_user("bob").await;

    assert_eq!(search(&app, &bob, "ALI").await, ["alice"]);
}

#[tokio::test]
async fn the_user_list_is_paginated() {
    let app = spawn_app().await;
    for name in ["alice", "bob", "carol"] {
        app.create_user(name, PASSWORD).await;
    }
    let admin = app.admin_token().await;

    let first = app.get_ok("/api/users/?limit=2", &admin).await;

    assert_keys(&first, PAGE_KEYS);
    assert_eq!(first["count"], json!(4));
    assert_eq!(results(&first).len(), 2);
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().expect("a next page");
    assert!(
        next.contains("limit=2") && next.contains("offset=2"),
        "{next}"
    );
    let path = next
        .strip_prefix(app.address.as_str())
        .expect("an absolute URL on this server");
    let second = app.get_ok(path, &admin).await;
    assert_eq!(results(&second).len(), 2);
    assert_eq!(second["next"], Value::Null);
    assert!(second["previous"].is_string(), "{second}");
    let mut all: Vec<i64> = results(&first)
        .iter()
        .chain(results(&second))
        .map(id)
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 4, "two pages cover every user once");
}

#[tokio::test]
async fn staff_can_read_a_user() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (_, staff) = app.login_new_staff("sam").await;

    let user = app.get_ok(&format!("/api/users/{alice_id}/"), &staff).await;

    assert_keys(&user, USER_KEYS);
    assert_eq!(id(&user), alice_id);
    assert_eq!(user["username"], "alice");
}

#[tokio::test]
async fn a_non_staff_user_cannot_read_update_or_delete_users() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let bob_id = app.create_user("bob", PASSWORD).await;
    let admin = app.admin_token().await;

    for target in [alice_id, bob_id] {
        let path = format!("/api/users/{target}/");
        let (get, get_body) = parts(app.get(&path, Some(&alice)).await).await;
        let (patch, patch_body) = parts(
            app.patch_json(
                &path,
                Some(&alice),
                &json!({"first_name": "Changed", "is_staff": true}),
            )
            .await,
        )
        .await;
        let (delete, delete_body) = parts(app.delete(&path, Some(&alice)).await).await;

        assert_eq!(get, 403, "GET {path}: {get_body}");
        assert_detail(&get_body);
        assert_eq!(patch, 403, "PATCH {path}: {patch_body}");
        assert_detail(&patch_body);
        assert_eq!(delete, 403, "DELETE {path}: {delete_body}");
        assert_detail(&delete_body);
        let user = app.get_ok(&path, &admin).await;
        assert_eq!(user["first_name"], "");
        assert_eq!(user["is_staff"], json!(false));
    }
}

#[tokio::test]
async fn an_unknown_user_id_is_404_for_staff() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let path = "/api/users/424242/";

    let (get, get_body) = parts(app.get(path, Some(&admin)).await).await;
    let (patch, patch_body) = parts(
        app.patch_json(path, Some(&admin), &json!({"first_name": "X"}))
            .await,
    )
    .await;
    let (delete, delete_body) = parts(app.delete(path, Some(&admin)).await).await;

    for (status, body) in [(get, get_body), (patch, patch_body), (delete, delete_body)] {
        assert_eq!(status, 404, "{body}");
        assert_eq!(body, json!({"detail": "Not found."}));
    }
}

#[tokio::test]
async fn staff_can_update_a_user() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (_, staff) = app.login_new_staff("sam").await;
    let path = format!("/api/users/{alice_id}/");
    let changes =
        json!({"email": "alice@example.com", "first_name": "Alice", "last_name": "Liddell"});

    let (status, body) = parts(app.patch_json(&path, Some(&staff), &changes).await).await;

    assert_eq!(status, 200, "{body}");
    assert_keys(&body, USER_KEYS);
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["first_name"], "Alice");
    assert_eq!(body["last_name"], "Liddell");
    let stored = app.get_ok(&path, &staff).await;
    assert_eq!(stored, body);
}

#[tokio::test]
async fn a_patch_to_a_taken_username_is_refused() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let admin = app.admin_token().await;
    let path = format!("/api/users/{alice_id}/");

    let (status, body) = parts(
        app.patch_json(&path, Some(&admin), &json!({"username": "bob"}))
            .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "username");
    assert_eq!(app.get_ok(&path, &admin).await["username"], "alice");
}

#[tokio::test]
async fn a_patch_with_a_weak_password_is_refused_and_keeps_the_old_one() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let admin = app.admin_token().await;

    for weak in ["short", "987654321", "ALICE"] {
        let (status, body) = parts(
            app.patch_json(
                &format!("/api/users/{alice_id}/"),
                Some(&admin),
                &json!({"password": weak}),
            )
            .await,
        )
        .await;

        assert_eq!(status, 400, "password {weak:?}: {body}");
        assert_field_error(&body, "password");
    }
    app.token("alice", PASSWORD).await;
}

#[tokio::test]
async fn a_patch_with_a_wrong_type_is_a_400_on_that_field() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let admin = app.admin_token().await;
    let path = format!("/api/users/{alice_id}/");

    for (field, value) in [
        ("is_active", json!("maybe")),
        ("is_staff", json!([1])),
        ("email", json!({"a": 1})),
    ] {
        let (status, body) = parts(
            app.patch_json(&path, Some(&admin), &json!({field: value}))
                .await,
        )
        .await;

        assert_eq!(status, 400, "{field} = {value}: {body}");
        assert_field_error(&body, field);
    }
    let user = app.get_ok(&path, &admin).await;
    assert_eq!(user["is_active"], json!(true));
    assert_eq!(user["is_staff"], json!(false));
}

#[tokio::test]
async fn only_a_superuser_grants_or_removes_superuser() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (_, staff) = app.login_new_staff("sam").await;
    let admin = app.admin_token().await;
    let admin_id = id(&app.get_ok("/api/me/", &admin).await);

    let (grant, grant_body) = parts(
        app.patch_json(
            &format!("/api/users/{alice_id}/"),
            Some(&staff),
            &json!({"is_superuser": true}),
        )
        .await,
    )
    .await;
    let (remove, remove_body) = parts(
        app.patch_json(
            &format!("/api/users/{admin_id}/"),
            Some(&staff),
            &json!({"is_superuser": false}),
        )
        .await,
    )
    .await;
    let (by_superuser, by_superuser_body) = parts(
        app.patch_json(
            &format!("/api/users/{alice_id}/"),
            Some(&admin),
            &json!({"is_superuser": true}),
        )
        .await,
    )
    .await;

    assert_eq!(grant, 403, "{grant_body}");
    assert_detail(&grant_body);
    assert_eq!(remove, 403, "{remove_body}");
    assert_detail(&remove_body);
    assert_eq!(
        app.get_ok(&format!("/api/users/{admin_id}/"), &admin).await["is_superuser"],
        json!(true)
    );
    assert_eq!(by_superuser, 200, "{by_superuser_body}");
    assert_eq!(by_superuser_body["is_superuser"], json!(true));
}

#[tokio::test]
async fn staff_can_delete_a_user() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (_, staff) = app.login_new_staff("sam").await;
    let path = format!("/api/users/{alice_id}/");

    let (status, body) = parts(app.delete(&path, Some(&staff)).await).await;

    assert_eq!(status, 204);
    assert_eq!(body, Value::Null, "no body");
    let (after, after_body) = parts(app.get(&path, Some(&staff)).await).await;
    assert_eq!(after, 404);
    assert_eq!(after_body, json!({"detail": "Not found."}));
    let (login, _) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(login, 401);
}

#[tokio::test]
async fn deleting_a_user_removes_their_threads() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.bob, c.thread_id, &["hello alice"])
        .await;
    let admin = app.admin_token().await;

    let (status, _) = parts(
        app.delete(&format!("/api/users/{}/", c.bob_id), Some(&admin))
            .await,
    )
    .await;

    assert_eq!(status, 204);
    assert!(app.thread_ids(&c.alice, c.alice_id).await.is_empty());
    let (thread, _) = parts(
        app.get(&format!("/chat/thread/{}/", c.thread_id), Some(&c.alice))
            .await,
    )
    .await;
    assert_eq!(thread, 404);
    assert_eq!(app.unread_count(&c.alice, c.alice_id).await, 0);
    assert_eq!(
        app.posts_to_a_gone_thread(&c.alice, c.thread_id).await,
        [404, 404]
    );
}

#[tokio::test]
async fn me_shows_the_signed_in_user() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;

    let me = app.get_ok("/api/me/", &alice).await;

    assert_keys(&me, USER_KEYS);
    assert_eq!(id(&me), alice_id);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["is_active"], json!(true));
    assert_eq!(me["is_staff"], json!(false));
    assert_eq!(me["is_superuser"], json!(false));
    assert_timestamp(&me["date_joined"]);
}

#[tokio::test]
async fn me_shows_a_superuser_as_staff_and_superuser() {
    let app = spawn_app().await;

    let me = app.get_ok("/api/me/", &app.admin_token().await).await;

    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_staff"], json!(true));
    assert_eq!(me["is_superuser"], json!(true));
}
