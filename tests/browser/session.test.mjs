// Signing in and out of the real console (started by scripts/browser-tests.sh with its users):
// a deep link sends a signed-out visitor to the sign-in page and back, a wrong password gets one
// message, the header names the user and their roles, and signing out ends the session.
// Needs TALOS_DR_URL, TALOS_DR_USER / TALOS_DR_PASSWORD and TALOS_DR_VIEWER / TALOS_DR_VIEWER_PASSWORD.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, openPage, screenshotBothThemes } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const USER = process.env.TALOS_DR_USER;
const PASSWORD = process.env.TALOS_DR_PASSWORD;
const VIEWER = process.env.TALOS_DR_VIEWER;
const VIEWER_PASSWORD = process.env.TALOS_DR_VIEWER_PASSWORD;

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console (see scripts/browser-tests.sh)");
  assert.ok(USER && PASSWORD, "TALOS_DR_USER and TALOS_DR_PASSWORD must name a console user");
  assert.ok(VIEWER && VIEWER_PASSWORD, "TALOS_DR_VIEWER and TALOS_DR_VIEWER_PASSWORD must name a viewer");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test("a deep link goes through sign-in and back; a wrong password gets one plain message", async () => {
  const { page, problems } = await openPage(browser);
  await page.goto(`${CONSOLE}/clusters/emulated`);

  await page.waitForURL(/\/login\?next=%2Fclusters%2Femulated$/, { timeout: 10_000 });
  await page.locator('[data-testid="login-form"]').waitFor();
  await screenshotBothThemes(page, "login");
  await page.locator('[data-testid="login-username"]').fill(USER);
  await page.locator('[data-testid="login-password"]').fill("not the password");
  await page.locator('[data-testid="login-submit"]').click();
  const error = page.locator('[data-testid="login-error"]');
  await error.waitFor({ timeout: 10_000 });
  assert.equal((await error.textContent()).trim(), "wrong username or password");

  await page.locator('[data-testid="login-password"]').fill(PASSWORD);
  await page.locator('[data-testid="login-submit"]').click();

  await page.waitForURL(`${CONSOLE}/clusters/emulated`, { timeout: 10_000 });
  assert.equal((await page.locator('[data-testid="session-user"]').textContent()).trim(), USER);
  assert.match(await page.locator('[data-testid="session-roles"]').textContent(), /operator/);
  await page.locator('[data-testid="verdict"]').waitFor({ timeout: 30_000 });
  assert.deepEqual(problems, []);
});

test("signing out ends the session: the API refuses it and the page asks to sign in again", async () => {
  const { page, problems } = await openPage(browser);
  await page.goto(`${CONSOLE}/login`);
  await page.locator('[data-testid="login-username"]').fill(VIEWER);
  await page.locator('[data-testid="login-password"]').fill(VIEWER_PASSWORD);
  await page.locator('[data-testid="login-submit"]').click();
  await page.locator('[data-testid="session-user"]').waitFor({ timeout: 10_000 });
  assert.equal((await page.locator('[data-testid="session-roles"]').textContent()).trim(), "viewer");
  const before = await page.evaluate(async () => (await fetch("/api/session")).status);
  assert.equal(before, 200);

  await page.locator('[data-testid="sign-out"]').click();

  await page.locator('[data-testid="login-form"]').waitFor({ timeout: 10_000 });
  const afterStatus = await page.evaluate(async () => (await fetch("/api/session")).status);
  assert.equal(afterStatus, 401);
  const cookies = await page.context().cookies();
  assert.ok(!cookies.some((c) => c.name === "talos_dr_session"), "the session cookie is gone");
  assert.deepEqual(problems, []);
});

test("each user sees who else has the cluster open, and sees them leave", async () => {
  const first = await openPage(browser);
  const second = await openPage(browser);
  for (const [{ page }, user, password] of [[first, USER, PASSWORD], [second, VIEWER, VIEWER_PASSWORD]]) {
    await page.goto(`${CONSOLE}/login?next=%2Fclusters%2Femulated`);
    await page.locator('[data-testid="login-username"]').fill(user);
    await page.locator('[data-testid="login-password"]').fill(password);
    await page.locator('[data-testid="login-submit"]').click();
    await page.waitForURL(`${CONSOLE}/clusters/emulated`, { timeout: 10_000 });
  }

  const seenByFirst = first.page.locator('[data-testid="other-viewers"]');
  const seenBySecond = second.page.locator('[data-testid="other-viewers"]');
  await seenByFirst.waitFor({ timeout: 10_000 });
  await seenBySecond.waitFor({ timeout: 10_000 });
  assert.equal((await seenByFirst.textContent()).trim(), `also here: ${VIEWER}`);
  assert.equal((await seenBySecond.textContent()).trim(), `also here: ${USER}`);

  await second.context.close();

  await seenByFirst.waitFor({ state: "detached", timeout: 10_000 });
  assert.deepEqual(first.problems, []);
  await first.context.close();
});
