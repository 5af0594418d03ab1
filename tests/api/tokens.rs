//! Tokens: refreshing, verifying, refusing tampered, foreign or expired ones, and the end of a
//! user's tokens on deactivation, password change or deletion.

use std::time::Duration;

use serde_json::json;
use simple_chat::Config;

use crate::{
    auth::{assert_token_not_valid, with_claims},
    helpers::{
        PASSWORD, assert_detail, assert_keys, b64url_encode, id, jwt_part, parts, serve_database,
        spawn_app, spawn_app_with,
    },
};

const NO_ACCOUNT: &str = "No active account found with the given credentials";

#[tokio::test]
async fn a_refresh_token_gives_a_new_working_access_token() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (_, refresh) = app.token_pair("alice", PASSWORD).await;

    let (status, body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_keys(&body, &["access"]);
    let access = body["access"].as_str().expect("access token");
    assert_eq!(jwt_part(access, 1)["token_type"], "access");
    let me = app.get_ok("/api/me/", access).await;
    assert_eq!(id(&me), alice_id);
}

#[tokio::test]
async fn refreshing_with_rotation_on_also_returns_a_new_refresh_token() {
    let app = spawn_app_with(|config| config.rotate_refresh_tokens = true).await;
    app.create_user("alice", PASSWORD).await;
    let (_, refresh) = app.token_pair("alice", PASSWORD).await;

    let (status, body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_keys(&body, &["access", "refresh"]);
    let rotated = body["refresh"].as_str().expect("refresh token");
    assert_ne!(rotated, refresh);
    assert_eq!(jwt_part(rotated, 1)["token_type"], "refresh");
    let (again, again_body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": rotated}))
            .await,
    )
    .await;
    assert_eq!(again, 200, "{again_body}");
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (_, refresh) = app.token_pair("alice", PASSWORD).await;

    let (status, body) = parts(app.get("/api/me/", Some(&refresh)).await).await;

    assert_token_not_valid(status, &body);
}

#[tokio::test]
async fn an_access_token_cannot_be_refreshed() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (access, _) = app.token_pair("alice", PASSWORD).await;

    let (status, body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": access}))
            .await,
    )
    .await;

    assert_token_not_valid(status, &body);
}

#[tokio::test]
async fn refreshing_needs_a_valid_refresh_token() {
    let app = spawn_app().await;

    let (garbage, garbage_body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": "garbage"}))
            .await,
    )
    .await;
    let (missing, missing_body) =
        parts(app.post_json("/api/token/refresh/", None, &json!({})).await).await;

    assert_token_not_valid(garbage, &garbage_body);
    assert_eq!(missing, 400);
    assert_eq!(
        missing_body,
        json!({"refresh": ["This field is required."]})
    );
}

#[tokio::test]
async fn verify_accepts_valid_tokens_of_either_type() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (access, refresh) = app.token_pair("alice", PASSWORD).await;

    for token in [access, refresh] {
        let (status, body) = parts(
            app.post_json("/api/token/verify/", None, &json!({"token": token}))
                .await,
        )
        .await;

        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({}));
    }
}

#[tokio::test]
async fn verify_refuses_an_invalid_token() {
    let app = spawn_app().await;

    let (status, body) = parts(
        app.post_json("/api/token/verify/", None, &json!({"token": "not.a.token"}))
            .await,
    )
    .await;
    let (missing, missing_body) =
        parts(app.post_json("/api/token/verify/", None, &json!({})).await).await;

    assert_token_not_valid(status, &body);
    assert_eq!(missing, 400);
    assert_eq!(missing_body, json!({"token": ["This field is required."]}));
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (access, _) = app.token_pair("alice", PASSWORD).await;
    let claims = jwt_part(&access, 1);
    let header = b64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64url_encode(claims.to_string().as_bytes());
    let unsigned = format!("{header}.{payload}.");

    let (status, body) = parts(app.get("/api/me/", Some(&unsigned)).await).await;
    let (verify, verify_body) = parts(
        app.post_json("/api/token/verify/", None, &json!({"token": unsigned}))
            .await,
    )
    .await;

    assert_token_not_valid(status, &body);
    assert_token_not_valid(verify, &verify_body);
}

#[tokio::test]
async fn a_token_with_edited_claims_is_refused() {
    let app = spawn_app().await;
    let admin_id = id(&app.get_ok("/api/me/", &app.admin_token().await).await);
    app.create_user("alice", PASSWORD).await;
    let (access, _) = app.token_pair("alice", PASSWORD).await;
    // Used first, as a client would: the server then knows its signature as verified, and
    // must still refuse that signature on edited claims.
    app.get_ok("/api/me/", &access).await;
    let mut as_admin = jwt_part(&access, 1);
    as_admin["user_id"] = json!(admin_id);
    let mut longer = jwt_part(&access, 1);
    let far_future = longer["exp"].as_i64().expect("exp") + 365 * 24 * 3600;
    longer["exp"] = json!(far_future);

    for forged in [
        with_claims(&access, &as_admin),
        with_claims(&access, &longer),
    ] {
        let (status, body) = parts(app.get("/api/me/", Some(&forged)).await).await;

        assert_token_not_valid(status, &body);
    }
}

#[tokio::test]
async fn a_token_with_an_altered_signature_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (access, _) = app.token_pair("alice", PASSWORD).await;
    let (unsigned, signature) = access.rsplit_once('.').expect("a JWT");
    let mut altered: Vec<char> = signature.chars().collect();
    altered[5] = if altered[5] == 'A' { 'B' } else { 'A' };
    let forged = format!("{unsigned}.{}", altered.into_iter().collect::<String>());

    let (status, body) = parts(app.get("/api/me/", Some(&forged)).await).await;

    assert_token_not_valid(status, &body);
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let ours = spawn_app_with(|config| {
        config.secret_key = Some("our-signing-key-0123456789abcdef".into())
    })
    .await;
    let theirs = spawn_app_with(|config| {
        config.secret_key = Some("their-signing-key-0123456789abcd".into())
    })
    .await;
    // Same user, same id, on both servers.
    let our_alice = ours.create_user("alice", PASSWORD).await;
    let their_alice = theirs.create_user("alice", PASSWORD).await;
    assert_eq!(our_alice, their_alice);
    let foreign = theirs.token("alice", PASSWORD).await;
    let own = ours.token("alice", PASSWORD).await;

    let (status, body) = parts(ours.get("/api/me/", Some(&foreign)).await).await;
    let (own_status, own_body) = parts(ours.get("/api/me/", Some(&own)).await).await;

    assert_token_not_valid(status, &body);
    assert_eq!(own_status, 200, "{own_body}");
}

#[tokio::test]
async fn instances_on_one_database_accept_each_others_tokens() {
    // No signing key configured: the generated one is kept in the database and shared.
    let first = spawn_app().await;
    let alice_id = first.create_user("alice", PASSWORD).await;
    let second = serve_database(Config::new(first.database_url.clone()), None).await;
    let from_first = first.token("alice", PASSWORD).await;
    let from_second = second.token("alice", PASSWORD).await;

    let on_second = second.get_ok("/api/me/", &from_first).await;
    let on_first = first.get_ok("/api/me/", &from_second).await;

    assert_eq!(id(&on_second), alice_id);
    assert_eq!(id(&on_first), alice_id);
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = spawn_app_with(|config| config.access_token_lifetime = Duration::from_secs(1)).await;
    let (_, alice) = app.login_new_user("alice").await;
    // Used while valid first: the server then knows it as verified, and must still refuse it.
    app.get_ok("/api/me/", &alice).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = parts(app.get("/api/me/", Some(&alice)).await).await;
    let (verify, verify_body) = parts(
        app.post_json("/api/token/verify/", None, &json!({"token": alice}))
            .await,
    )
    .await;

    assert_token_not_valid(status, &body);
    assert_token_not_valid(verify, &verify_body);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app_with(|config| config.refresh_token_lifetime = Duration::from_secs(1)).await;
    app.create_user("alice", PASSWORD).await;
    let (_, refresh) = app.token_pair("alice", PASSWORD).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;

    assert_token_not_valid(status, &body);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_tokens_and_sign_in() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (access, refresh) = app.token_pair("alice", PASSWORD).await;
    let admin = app.admin_token().await;

    let (status, body) = parts(
        app.patch_json(
            &format!("/api/users/{alice_id}/"),
            Some(&admin),
            &json!({"is_active": false}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_active"], json!(false));
    let (me, me_body) = parts(app.get("/api/me/", Some(&access)).await).await;
    assert_eq!(me, 401, "{me_body}");
    assert_detail(&me_body);
    let (refreshed, refreshed_body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;
    assert_eq!(refreshed, 401, "{refreshed_body}");
    let (login, login_body) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(login, 401);
    assert_eq!(login_body, json!({"detail": NO_ACCOUNT}));
}

#[tokio::test]
async fn a_reactivated_user_can_sign_in_again() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let admin = app.admin_token().await;
    let path = format!("/api/users/{alice_id}/");
    let (off, _) = parts(
        app.patch_json(&path, Some(&admin), &json!({"is_active": false}))
            .await,
    )
    .await;
    assert_eq!(off, 200);

    let (on, _) = parts(
        app.patch_json(&path, Some(&admin), &json!({"is_active": true}))
            .await,
    )
    .await;

    assert_eq!(on, 200);
    let access = app.token("alice", PASSWORD).await;
    assert_eq!(id(&app.get_ok("/api/me/", &access).await), alice_id);
}

#[tokio::test]
async fn changing_a_password_ends_older_tokens() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;
    let (access, refresh) = app.token_pair("alice", PASSWORD).await;
    let admin = app.admin_token().await;
    let new_password = "Brand-new-pass-77";

    let (status, body) = parts(
        app.patch_json(
            &format!("/api/users/{alice_id}/"),
            Some(&admin),
            &json!({"password": new_password}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("password").is_none(),
        "the password is never shown: {body}"
    );
    let (me, me_body) = parts(app.get("/api/me/", Some(&access)).await).await;
    assert_eq!(me, 401, "{me_body}");
    let (refreshed, _) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;
    assert_eq!(refreshed, 401);
    let (old_login, _) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(old_login, 401);
    let fresh = app.token("alice", new_password).await;
    assert_eq!(id(&app.get_ok("/api/me/", &fresh).await), alice_id);
}

#[tokio::test]
async fn a_deleted_users_token_is_refused() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let admin = app.admin_token().await;
    let (deleted, _) = parts(
        app.delete(&format!("/api/users/{alice_id}/"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(deleted, 204);

    let (status, body) = parts(app.get("/api/me/", Some(&alice)).await).await;

    assert_eq!(status, 401, "{body}");
    assert_detail(&body);
}
