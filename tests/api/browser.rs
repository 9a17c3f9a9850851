//! End-to-end tests in a real headless Chromium: an admin walks the console the way a person
//! would (typing into forms, clicking buttons, following redirects), and each main page is saved
//! as a screenshot under `target/screenshots/` for review. One browser runs at a time.

mod driver;

use driver::Browser;

use crate::console::PASSWORD;
use crate::helpers::*;

const ADMIN: &str = "ada@roost.test";
const NEWCOMER: &str = "bo@roost.test";

/// Submits the login form on the page shown.
async fn submit_login(browser: &Browser, email: &str, password: &str) {
    browser.fill("email", email).await;
    browser.fill("password", password).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
}

#[tokio::test]
async fn admin_logs_in_sees_account_and_logs_out() {
    let app = spawn_app().await;
    app.user_with_password(ADMIN, "admin").await;
    let browser = Browser::open(&app).await;

    // A signed-out visit to a page asks for a login first.
    browser.goto("/account").await;
    browser.wait_for_path("/login").await;
    browser.wait_for("input#email").await;
    browser.screenshot("login").await;

    submit_login(&browser, ADMIN, "not the password").await;
    browser.wait_for("#login-error").await;
    assert_eq!(
        browser.text("#login-error").await,
        "The email or the password is wrong."
    );

    // The failed attempt kept where the admin was going.
    submit_login(&browser, ADMIN, PASSWORD).await;
    browser.wait_for_path("/account").await;
    browser.wait_for_text("Your account").await;
    assert_eq!(browser.text(".account-link").await, ADMIN);
    browser.screenshot("account").await;

    // A form post from the page itself carries the CSRF token the server expects.
    let before = browser.text("#summary-state").await;
    let after = if before == "on" { "off" } else { "on" };
    browser
        .click("form[action='/account/summary-email'] button[type=submit]")
        .await;
    browser.wait_for_element_text("#summary-state", after).await;

    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.wait_for_text("You are logged out.").await;
    assert!(!browser.exists("#logout").await, "still signed in");
    // The session is over on the server too, not just in the page.
    browser.goto("/account").await;
    browser.wait_for_path("/login").await;

    browser.close().await;
}

#[tokio::test]
async fn admin_adds_a_user_puts_them_in_a_flock_and_enforces_2fa() {
    let app = spawn_app().await;
    app.user_with_password(ADMIN, "admin").await;
    let browser = Browser::open(&app).await;

    // An admin's home is the users list.
    browser.goto("/login").await;
    submit_login(&browser, ADMIN, PASSWORD).await;
    browser.wait_for_path("/users").await;
    browser.wait_for("#users-table").await;
    assert!(browser.text("#users-table").await.contains(ADMIN));
    browser.screenshot("users").await;

    // A flock for the new user to join.
    browser.click(".mainnav a[href='/flocks']").await;
    browser.wait_for_path("/flocks").await;
    browser.fill("flock-name", "Night shift").await;
    browser.click("#create-flock").await;
    browser
        .wait_for_element_text("#flock-name-heading", "Night shift")
        .await;
    let flock_id = browser.text("#flock-id").await;
    assert_eq!(app.flock_users(&flock_id).await, (vec![], vec![]));

    // The new user, through the add-user form.
    browser.goto("/users").await;
    browser.click("#add-user").await;
    browser.wait_for_path("/users/new").await;
    browser.screenshot("user-new").await;
    browser.fill("email", NEWCOMER).await;
    browser.select("access_level", "user").await;
    browser.fill("note", "Joins the night shift").await;
    browser.set_checkbox("send_welcome_mail", false).await;
    browser.click("#add-user-submit").await;
    browser.wait_for_element_text("#user-email", NEWCOMER).await;
    let user = app.user(NEWCOMER).await;
    assert_eq!(user["access_level"], "user", "{user}");
    assert_eq!(user["note"], "Joins the night shift", "{user}");

    // Assigned as a manager from their page.
    browser.select("assign-flock-id", &flock_id).await;
    browser.select("assign-role", "manager").await;
    browser.click("#assign-flock").await;
    browser.wait_for("#flock-roles").await;
    assert!(browser.text("#flock-roles").await.contains("Night shift"));
    assert_eq!(
        app.flock_users(&flock_id).await,
        (sorted(&[NEWCOMER]), vec![])
    );
    browser.screenshot("user").await;

    // The flock's pages show the new member.
    browser.click(".mainnav a[href='/flocks']").await;
    browser.wait_for("#flocks-table").await;
    assert!(browser.text("#flocks-table").await.contains("Night shift"));
    browser.screenshot("flocks").await;
    browser
        .click(&format!("#flocks-table a[href='/flocks/{flock_id}']"))
        .await;
    browser
        .wait_for_element_text("#flock-name-heading", "Night shift")
        .await;
    assert!(browser.text("#managers").await.contains(NEWCOMER));
    browser.screenshot("flock").await;

    // A global key, shown once, then listed by its note.
    browser.click(".mainnav a[href='/api-keys']").await;
    browser.wait_for_path("/api-keys").await;
    browser.select("auth_token_type", "read-only").await;
    browser.fill("note", "dashboard").await;
    browser.click("#create-key").await;
    let secret = browser.text("#new-key-secret").await;
    assert!(secret.starts_with("roost_"), "{secret}");
    app.get_as(&secret, "users/list", &[]).await.ok();
    browser.screenshot("api-key-created").await;
    browser.click("#key-created-done").await;
    browser.wait_for("#keys-table").await;
    assert!(browser.text("#keys-table").await.contains("dashboard"));
    browser.screenshot("api-keys").await;

    // Enforcing 2FA on the settings page is what the API reports.
    let enforced = |body: &serde_json::Value| body["settings"]["globally_enforce_2fa"].clone();
    assert_eq!(enforced(app.get("settings", &[]).await.ok()), false);
    browser.click(".mainnav a[href='/settings']").await;
    browser
        .wait_for_element_text("#enforce-2fa-state", "off")
        .await;
    browser.screenshot("settings").await;
    browser.click("#enforce-2fa-toggle").await;
    browser
        .wait_for_element_text("#enforce-2fa-state", "on")
        .await;
    assert_eq!(enforced(app.get("settings", &[]).await.ok()), true);

    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.wait_for_text("You are logged out.").await;
    browser.close().await;
}

#[tokio::test]
async fn admin_registers_a_security_key_and_logs_in_with_it() {
    let app = spawn_app().await;
    app.user_with_password(ADMIN, "admin").await;
    let browser = Browser::open(&app).await;
    // Chromium's virtual authenticator answers the key ceremonies: no USB key, no prompt.
    browser.add_virtual_authenticator().await;

    browser.goto("/login").await;
    submit_login(&browser, ADMIN, PASSWORD).await;
    browser.wait_for_path("/users").await;

    // The first factor comes with recovery codes, shown on the page by its script.
    browser.goto("/account/two-factor").await;
    browser.fill("webauthn-name", "Desk key").await;
    browser.wait_for_scripts().await;
    browser.click("#webauthn-register").await;
    browser.wait_for("#recovery-codes li").await;
    let codes = browser.text("#recovery-codes").await;
    let codes: Vec<&str> = codes.lines().filter(|code| !code.is_empty()).collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(!browser.exists("#webauthn-error:not([hidden])").await);
    // Done: back to the page, which now lists the key.
    browser.click("#recovery-codes-done").await;
    browser.wait_for_path("/account/two-factor").await;
    browser.wait_for(".webauthn-credential").await;
    assert!(
        browser
            .text(".webauthn-credential")
            .await
            .contains("Desk key")
    );
    assert_eq!(app.user(ADMIN).await["webauthn_enabled"], true);
    browser.screenshot("two-factor").await;

    // The owner renames and removes keys; removing the last one removes the factor.
    let rename = ".webauthn-credential input[name='name']";
    browser.fill_css(rename, "Office key").await;
    browser.click(".webauthn-credential .rename-key").await;
    browser.wait_for_text("Security key renamed.").await;
    assert!(
        browser
            .text(".webauthn-credential")
            .await
            .contains("Office key")
    );
    browser.click(".webauthn-credential .remove-key").await;
    browser.wait_for_text("Security key removed.").await;
    browser
        .wait_for_text("No security key or passkey registered.")
        .await;
    assert_eq!(app.user(ADMIN).await["webauthn_enabled"], false);
    // Registering again brings fresh recovery codes: the old ones went with the last factor.
    browser.fill("webauthn-name", "Desk key").await;
    browser.wait_for_scripts().await;
    browser.click("#webauthn-register").await;
    browser.wait_for("#recovery-codes li").await;
    browser.click("#recovery-codes-done").await;
    browser.wait_for(".webauthn-credential").await;
    assert_eq!(app.user(ADMIN).await["webauthn_enabled"], true);

    // Next login: the password, then the key.
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.wait_for_text("You are logged out.").await;
    submit_login(&browser, ADMIN, PASSWORD).await;
    browser.wait_for_path("/login/two-factor").await;
    browser.wait_for("#webauthn-login").await;
    browser.wait_for_scripts().await;
    browser.screenshot("factor-step").await;
    browser.click("#webauthn-login").await;
    browser.wait_for_path("/users").await;
    browser.wait_for("#users-table").await;

    // An admin removing the user's keys ends their sessions, and the factor step with them.
    app.post("user/webauthn/disable", &[("email", ADMIN)])
        .await
        .ok();
    assert_eq!(app.user(ADMIN).await["webauthn_enabled"], false);
    browser.goto("/users").await;
    browser.wait_for_path("/login").await;
    submit_login(&browser, ADMIN, PASSWORD).await;
    browser.wait_for_path("/users").await;
    browser.wait_for("#users-table").await;

    browser.close().await;
}

#[tokio::test]
async fn a_user_resets_a_forgotten_password_through_the_mailed_link() {
    let app = spawn_app().await;
    app.user_with_password(NEWCOMER, "user").await;
    let browser = Browser::open(&app).await;

    browser.goto("/login").await;
    browser.click("#forgot-password").await;
    browser.wait_for_path("/forgot-password").await;
    browser.fill("email", NEWCOMER).await;
    browser
        .click("#forgot-password-form button[type=submit]")
        .await;
    browser.wait_for("#forgot-sent").await;

    // The link, as the mail client shows it (quoted-printable soft breaks undone).
    let mails = app.outbox().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let unfolded = mails[0].replace("=\r\n", "");
    let start = unfolded.find("/reset/").expect("a reset link in the mail");
    let path: String = unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect();

    browser.goto(&path).await;
    browser.wait_for_text(NEWCOMER).await;
    browser.screenshot("set-password").await;
    // A mistake is explained on the page (the browser itself enforces the length).
    browser.fill("password", "a fresh and long password").await;
    browser.fill("confirm", "a fresh and long passwort").await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for_text("The two passwords do not match.")
        .await;
    let fresh = "a fresh and long password";
    browser.fill("password", fresh).await;
    browser.fill("confirm", fresh).await;
    browser.click("form button[type=submit]").await;
    // Signed in straight away.
    browser.wait_for_path("/account").await;
    assert_eq!(browser.text(".account-link").await, NEWCOMER);

    // The link worked once.
    browser.goto(&path).await;
    browser.wait_for_text("This link no longer works").await;

    // The new password is the password now; the old one is not.
    browser.goto("/account").await;
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    submit_login(&browser, NEWCOMER, PASSWORD).await;
    browser.wait_for("#login-error").await;
    submit_login(&browser, NEWCOMER, fresh).await;
    browser.wait_for_path("/account").await;
    browser.close().await;
}

/// The leaver has the console open in their browser; an admin, in another, finds them on the
/// access review and offboards them through the confirmation page; the leaver's next click lands
/// on the login page.
#[tokio::test]
async fn admin_offboards_from_the_review_and_the_leavers_browser_is_logged_out() {
    const LEAVER: &str = "lee@roost.test";
    let app = spawn_app().await;
    app.user_with_password(ADMIN, "admin").await;
    app.user_with_password(LEAVER, "user").await;
    let flock = app.create_flock("Night shift").await;
    app.assign(LEAVER, &flock, "watcher").await;

    let leaver = Browser::open(&app).await;
    leaver.goto("/login").await;
    submit_login(&leaver, LEAVER, PASSWORD).await;
    leaver.wait_for_path("/account").await;

    let admin = leaver.open_another(&app).await;
    admin.goto("/login").await;
    submit_login(&admin, ADMIN, PASSWORD).await;
    admin.wait_for_path("/users").await;
    admin.click(".mainnav a[href='/review']").await;
    admin.wait_for_path("/review").await;
    admin.wait_for("#review-without-factor").await;
    assert!(admin.text("#review-without-factor").await.contains(LEAVER));
    admin.screenshot("access-review").await;
    let id = app.user(LEAVER).await["id"].as_u64().unwrap();
    admin
        .click(&format!("#review-without-factor a[href='/users/{id}']"))
        .await;
    admin.wait_for_path(&format!("/users/{id}")).await;
    admin.click("#offboard-user").await;
    admin.wait_for_path(&format!("/users/{id}/offboard")).await;
    assert!(
        admin
            .text("#offboard-steps")
            .await
            .contains("watcher of Night shift")
    );
    admin.screenshot("offboard").await;
    admin.click("#confirm-offboard").await;
    admin.wait_for_path(&format!("/users/{id}")).await;
    admin
        .wait_for_text(&format!("{LEAVER} offboarded: 1 sessions ended"))
        .await;
    admin.close().await;
    let user = app.user(LEAVER).await;
    assert_eq!(user["disabled"], true);
    assert_eq!(user["watched_flocks"], serde_json::json!([]));

    // The leaver's next click, in the page they had open.
    leaver.click(".mainnav a[href='/account']").await;
    leaver.wait_for_path("/login").await;
    leaver.close().await;
}

/// Passkeys, from registration to an admin's reset: the user registers a security key and a
/// passkey (the page says which is which), signs in with the passkey alone, gives up their
/// password; the admin's switch refuses a passkey sign-in already on screen; the user loses their
/// passkey and the admin's reset with a set-password link brings them back.
#[tokio::test]
async fn a_user_signs_in_with_a_passkey_alone_and_an_admin_can_reset_it() {
    use crate::audit::{actions, entries_after, newest_id};
    let app = spawn_app().await;
    app.user_with_password(NEWCOMER, "user").await;
    let browser = Browser::open(&app).await;

    // A security key first, on one authenticator (then unplugged)...
    let desk_key = browser.add_virtual_authenticator().await;
    browser.goto("/login").await;
    submit_login(&browser, NEWCOMER, PASSWORD).await;
    browser.wait_for_path("/account").await;
    browser.goto("/account/two-factor").await;
    browser.fill("webauthn-name", "Desk key").await;
    browser.wait_for_scripts().await;
    browser.click("#webauthn-register").await;
    browser.wait_for("#recovery-codes li").await;
    browser.click("#recovery-codes-done").await;
    browser.wait_for(".webauthn-credential").await;
    browser.remove_virtual_authenticator(&desk_key).await;

    // ...then a passkey on another: a discoverable credential, verified.
    let laptop = browser.add_virtual_authenticator().await;
    browser.fill("webauthn-name", "Laptop passkey").await;
    browser.wait_for_scripts().await;
    browser.click("#passkey-register").await;
    browser
        .wait_for_text("Signs you in on its own, or serves as your second factor.")
        .await;
    let kinds = browser.text(".credentials").await;
    assert!(kinds.contains("Desk key"), "{kinds}");
    assert!(kinds.contains("security key"), "{kinds}");
    assert!(kinds.contains("Laptop passkey"), "{kinds}");
    assert!(
        browser
            .exists(".credential-kind[data-kind='passkey']")
            .await
    );
    assert!(
        browser
            .exists(".credential-kind[data-kind='security_key']")
            .await
    );
    browser.screenshot("passkey-two-factor").await;
    let added = app.store.user_by_email(&email(NEWCOMER)).unwrap().user;
    assert_eq!(added.webauthn_credentials.len(), 2);
    assert!(added.has_passkey());

    // Logged out, the passkey alone signs them in: no password, no factor step.
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    browser.wait_for("#passkey-login").await;
    browser.wait_for_scripts().await;
    browser.screenshot("passkey-login").await;
    let before = newest_id(&app);
    browser.click("#passkey-login").await;
    browser.wait_for_path("/account").await;
    assert_eq!(browser.text(".account-link").await, NEWCOMER);
    let trail = entries_after(&app, before);
    let login = trail
        .iter()
        .find(|e| e.action_type == "user_login")
        .unwrap_or_else(|| panic!("{:?}", actions(&trail)));
    assert_eq!(login.details["method"], "passkey");
    assert_eq!(login.target.as_deref(), Some(NEWCOMER));

    // They give up their password (the current one asked for once more).
    browser.fill("remove-current", PASSWORD).await;
    browser.click("#remove-password").await;
    browser.wait_for_text("You no longer have a password").await;
    browser.wait_for("#no-password").await;
    browser.click("#logout").await;
    browser.wait_for_path("/login").await;
    submit_login(&browser, NEWCOMER, PASSWORD).await;
    browser.wait_for("#login-error").await;

    // The admin forbids passwordless sign-in while the login page is on screen: refused.
    browser.goto("/login").await;
    browser.wait_for("#passkey-login").await;
    browser.wait_for_scripts().await;
    let stranded = app
        .post("settings/usermanagement/passwordless_sign_in/disable", &[])
        .await;
    // The one who forbids it is told who is left without a way in.
    assert_eq!(
        stranded.ok()["passkey_only_users"],
        serde_json::json!({"total": 1, "emails": [NEWCOMER]})
    );
    browser.click("#passkey-login").await;
    browser
        .wait_for_element_text(
            "#webauthn-error",
            "Signing in with a passkey alone is turned off on this console. Log in with your password.",
        )
        .await;
    assert_eq!(browser.path().await, "/login");
    browser.goto("/login").await;
    browser.wait_for("#email").await;
    assert!(!browser.exists("#passkey-login").await);
    app.post("settings/usermanagement/passwordless_sign_in/enable", &[])
        .await
        .ok_bare();

    // The passkey is lost; the admin resets it and mails a set-password link.
    browser.remove_virtual_authenticator(&laptop).await;
    app.post("user/webauthn/disable", &[("email", NEWCOMER)])
        .await
        .ok();
    app.post("user/password/reset", &[("email", NEWCOMER)])
        .await
        .ok();
    app.wait_for_mail_queue().await;
    let mails = app.outbox().await;
    let unfolded = mails.last().expect("the reset mail").replace("=\r\n", "");
    let start = unfolded.find("/reset/").expect("a reset link in the mail");
    let path: String = unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect();
    browser.goto(&path).await;
    browser.wait_for_text(NEWCOMER).await;
    let fresh = "a fresh and long password";
    browser.fill("password", fresh).await;
    browser.fill("confirm", fresh).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/account").await;
    assert_eq!(browser.text(".account-link").await, NEWCOMER);
    let back = app.store.user_by_email(&email(NEWCOMER)).unwrap().user;
    assert!(back.password_hash.is_some());
    assert!(back.webauthn_credentials.is_empty());
    browser.close().await;
}

fn email(text: &str) -> roost::domain::Email {
    roost::domain::Email::parse(text).expect("an address")
}
