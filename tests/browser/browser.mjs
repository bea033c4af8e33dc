// Launches the system Chromium headless through playwright-core (which downloads no browser)
// and saves screenshots where the test scripts collect them.

import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOT_DIR = resolve(process.env.SCREENSHOT_DIR ?? "test-output/screenshots");

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/**
 * Opens a page at 1280x900 and collects what the page logs as errors, so a test can assert
 * that the app ran without them (a wasm that fails to instantiate shows only here).
 */
export async function openPage(browser, { colorScheme = "light", width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/EventSource|net::ERR_|Failed to load resource/.test(msg.text())) {
      problems.push(`console error: ${msg.text()}`);
    }
  });
  return { context, page, problems };
}

/** Counts full-document navigations of the main frame (a reload or a link away). */
export function countNavigations(page) {
  const seen = { count: 0 };
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) seen.count += 1;
  });
  return seen;
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Screenshots the page in light and then dark colour scheme (the app follows the OS setting). */
export async function screenshotBothThemes(page, name) {
  const paths = [];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    paths.push(await screenshot(page, `${name}-${scheme}`));
  }
  await page.emulateMedia({ colorScheme: "light" });
  return paths;
}

/**
 * Signs in through the console's sign-in page and waits until the signed-in app shows the user.
 * Credentials default to TALOS_DR_USER / TALOS_DR_PASSWORD (scripts/browser-tests.sh sets them).
 */
export async function signIn(page, baseUrl, user = process.env.TALOS_DR_USER, password = process.env.TALOS_DR_PASSWORD) {
  if (!user || !password) {
    throw new Error("TALOS_DR_USER and TALOS_DR_PASSWORD must name a console user (see scripts/browser-tests.sh)");
  }
  await page.goto(new URL("/login", baseUrl).href);
  await page.locator('[data-testid="login-username"]').fill(user);
  await page.locator('[data-testid="login-password"]').fill(password);
  await page.locator('[data-testid="login-submit"]').click();
  await page.locator('[data-testid="session-user"]').waitFor({ timeout: 10_000 });
}
