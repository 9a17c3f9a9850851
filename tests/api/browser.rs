//! End-to-end tests in a real headless Chromium: an admin walks the console the way a person
//! would (typing into forms, clicking buttons, following redirects), and each main page is saved
//! as a screenshot under `target/screenshots/` for review. One browser runs at a time.

mod driver;

use driver::Browser;

use crate::console::PASSWORD;
use crate::helpers::*;

const ADMIN: &str = "ada@roost.test";

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
