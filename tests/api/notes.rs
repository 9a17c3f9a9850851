use crate::helpers::*;

#[tokio::test]
async fn user_note_add_sets_note() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io"), ("note", "on call in March")];
    let resp = app.post("user/note/add", &params).await;
    resp.ok_msg("User (a@x.io) note successfully added.");
    assert_eq!(app.user("a@x.io").await["note"], "on call in March");
}

#[tokio::test]
async fn user_note_add_replaces_previous_note() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    for note in ["first", "second"] {
        let params = [("email", "a@x.io"), ("note", note)];
        app.post("user/note/add", &params).await.ok();
    }
    assert_eq!(app.user("a@x.io").await["note"], "second");
}

#[tokio::test]
async fn user_note_add_keeps_unicode_and_newlines() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let note = "Zoë — line one\nline two & <b>three</b>";
    let params = [("email", "a@x.io"), ("note", note)];
    app.post("user/note/add", &params).await.ok();
    assert_eq!(app.user("a@x.io").await["note"], note);
}

#[tokio::test]
async fn user_note_add_rejects_missing_note() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let before = app.snapshot().await;
    let resp = app.post("user/note/add", &[("email", "a@x.io")]).await;
    resp.err(400, &missing("note"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_note_add_rejects_unknown_user() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("email", "nobody@x.io"), ("note", "n")];
    let resp = app.post("user/note/add", &params).await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_note_add_rejects_note_over_10000_characters() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let before = app.snapshot().await;
    let note = "é".repeat(10_001);
    let params = [("email", "a@x.io"), ("note", note.as_str())];
    let resp = app.post("user/note/add", &params).await;
    resp.err(400, "Note longer than maximum (10000 characters).");
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_note_add_accepts_10000_multibyte_characters() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let note = "é".repeat(10_000);
    let params = [("email", "a@x.io"), ("note", note.as_str())];
    app.post("user/note/add", &params).await.ok();
    assert_eq!(app.user("a@x.io").await["note"], note);
}

#[tokio::test]
async fn user_edit_rejects_note_over_10000_characters() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let before = app.snapshot().await;
    let note = "n".repeat(10_001);
    let params = [("email", "a@x.io"), ("note", note.as_str())];
    let resp = app.post("user/edit", &params).await;
    resp.err(400, "Note longer than maximum (10000 characters).");
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_note_delete_removes_note() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io"), ("note", "temporary")];
    app.post("user/note/add", &params).await.ok();
    let resp = app.delete("user/note/delete", &[("email", "a@x.io")]).await;
    resp.ok_msg("User (a@x.io) note successfully removed.");
    let note = app.user("a@x.io").await["note"].clone();
    assert!(note.is_null() || note == "", "note is gone: {note}");
}

#[tokio::test]
async fn user_note_delete_rejects_unknown_user() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let resp = app
        .delete("user/note/delete", &[("email", "nobody@x.io")])
        .await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_note_delete_rejects_post() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io"), ("note", "kept")];
    app.post("user/note/add", &params).await.ok();
    let resp = app.post("user/note/delete", &[("email", "a@x.io")]).await;
    resp.err(405, "Method not allowed.");
    assert_eq!(app.user("a@x.io").await["note"], "kept");
}
