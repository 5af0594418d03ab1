//! `--target-url URL --username U --password P --other-user U2`: scenario A against a server
//! that is already running (the original Django app, for the side-by-side table), through the
//! original's own URLs only (its code's spellings: `/chat/thread/<id>/message/`,
//! `/chat/messages/`, `/chat/user/<id>/message/`) and with requests its code accepts (every
//! posted message names its `sender`). One user does everything: it logs in, gets its thread
//! with U2, and posts the few messages the other requests need through the API first. The
//! message list asks for `?limit=20`, which the original ignores (it has no pagination and
//! answers the whole thread). Endpoints the original lacks (search, `/ws`) are skipped, and
//! so is `/healthz` where it is missing (then there is no ratio column).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hyper::Method;
use serde_json::{Value, json};

use crate::{
    client::drive,
    data::sentence,
    endpoints::NAMES as NAMES_OF_A,
    http::{ANY_2XX, Http},
    report::EndpointRow,
};

pub struct Account {
    pub url: String,
    pub username: String,
    pub password: String,
    pub other: String,
}

/// The endpoints the original has: scenario A's, up to the ones it never had (search, `/ws`).
const NAMES: &[&str] = NAMES_OF_A.split_at(9).0;

async fn login(http: &Http, account: &Account) -> Result<String, String> {
    let body = json!({"username": account.username, "password": account.password}).to_string();
    let answer = http
        .json(Method::POST, "/api/token/", None, Some(body), 200)
        .await?;
    answer["access"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no access token in {answer}"))
}

/// The `user_id` claim of a simplejwt access token.
fn user_id(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["user_id"].as_i64()
}

fn batch(sender: i64, count: usize, random: &mut crate::data::Random) -> String {
    let messages: Vec<Value> = (0..count)
        .map(|_| json!({"sender": sender, "text": sentence(random)}))
        .collect();
    json!({ "messages": messages }).to_string()
}

/// Scenario A against `account.url`; the rows and the problems.
pub async fn run(
    account: &Account,
    concurrency: usize,
    duration: Duration,
) -> Result<Vec<EndpointRow>, String> {
    let http = Http::new(&account.url);
    let token = login(&http, account).await?;
    let me = user_id(&token).ok_or("no user_id in the access token")?;
    let pair = json!({"user1": account.username, "user2": account.other}).to_string();
    let thread = http
        .json(
            Method::POST,
            "/chat/thread/",
            Some(&token),
            Some(pair.clone()),
            ANY_2XX,
        )
        .await?;
    let thread = thread["id"]
        .as_i64()
        .ok_or(format!("no thread id in {thread}"))?;
    let messages = format!("/chat/thread/{thread}/message/");
    let mut random = crate::data::Random::new(5);
    let posted = http
        .json(
            Method::POST,
            &messages,
            Some(&token),
            Some(batch(me, 20, &mut random)),
            ANY_2XX,
        )
        .await?;
    let list = posted.as_array().or_else(|| posted["results"].as_array());
    let ids: Vec<i64> = list
        .map(|l| l.iter().filter_map(|m| m["id"].as_i64()).collect())
        .unwrap_or_default();
    let has_healthz = http
        .call(Method::GET, "/healthz", None, None, 200)
        .await
        .is_ok();

    let mut rows = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        if *name == "healthz" && !has_healthz {
            eprintln!("  healthz: not served by the target; no ratios");
            continue;
        }
        // A fresh token for each endpoint: the original's last five minutes.
        let token = login(&http, account).await?;
        let (h, messages, pair) = (http.clone(), messages.clone(), pair.clone());
        let credentials =
            json!({"username": account.username, "password": account.password}).to_string();
        let ids = json!({ "messages_ids": ids }).to_string();
        let tally = drive(concurrency, duration, i as u64 + 1, move |random| {
            let (http, token) = (h.clone(), token.clone());
            let (method, path, body) = match *name {
                "healthz" => (Method::GET, "/healthz".to_owned(), None),
                "token" => (
                    Method::POST,
                    "/api/token/".to_owned(),
                    Some(credentials.clone()),
                ),
                "create-or-get thread" => {
                    (Method::POST, "/chat/thread/".to_owned(), Some(pair.clone()))
                }
                "thread list" => (Method::GET, format!("/chat/user/{me}/thread/"), None),
                "message page" => (Method::GET, format!("{messages}?limit=20"), None),
                "post 1" => (Method::POST, messages.clone(), Some(batch(me, 1, random))),
                "post batch of 10" => (Method::POST, messages.clone(), Some(batch(me, 10, random))),
                "mark read" => (
                    Method::POST,
                    "/chat/messages/".to_owned(),
                    Some(ids.clone()),
                ),
                _ => (Method::GET, format!("/chat/user/{me}/message/"), None),
            };
            async move {
                let token = (path != "/healthz" && path != "/api/token/").then_some(token);
                http.call(method, &path, token.as_deref(), body, ANY_2XX)
                    .await
                    .map(|_| ())
            }
        })
        .await;
        rows.push(EndpointRow::new(name, &tally, duration));
        EndpointRow::relate_to_healthz(&mut rows);
        eprintln!("  {}", rows[rows.len() - 1].line(None));
    }
    Ok(rows)
}
