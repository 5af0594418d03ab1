//! The admin page: threads and messages (lists, pages, deleting).

use super::*;

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

#[tokio::test]
async fn message_lists_show_edits_replies_and_reactions() {
    let app = spawn_app().await;
    let (conversation, message) = conversation_with_message(&app).await;
    let path = format!("/api/messages/{message}/");
    let edit = serde_json::json!({"text": "edited words"});
    assert_eq!(
        app.patch_json(&path, Some(&conversation.alice), &edit)
            .await
            .status(),
        200
    );
    let react = format!("/api/messages/{message}/reactions/%F0%9F%91%8D/");
    let response = app
        .request(reqwest::Method::PUT, &react, Some(&conversation.bob))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply = serde_json::json!({"messages": [{"text": "answer", "reply_to": message}]});
    let thread_path = format!("/thread/{}/message/", conversation.thread_id);
    assert_eq!(
        app.post_json(&thread_path, Some(&conversation.bob), &reply)
            .await
            .status(),
        201
    );

    let admin = Admin::superuser(&app).await;
    for page in [
        admin.page("/admin/messages/").await,
        admin
            .page(&format!("/admin/threads/{}/", conversation.thread_id))
            .await,
    ] {
        assert!(page.contains("edited words"), "{page}");
        assert!(page.contains(">Edited <time datetime="), "{page}");
        assert!(page.contains(&format!("Reply to #{message}")), "{page}");
        assert!(page.contains("👍 1"), "{page}");
    }
}
