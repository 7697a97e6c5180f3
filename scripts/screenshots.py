"""Full-page screenshots of every Flywheel page, at 1280 px and at 390 px, on demo data.

    python scripts/screenshots.py [--out DIR] [--docs] [--keep]

Starts the whole system by itself in a fresh temporary directory (its own SQLite database,
mail folder and broker, free ports for the web server and localstripe), loads the demo data,
then signs in as each demo role and visits every page:

- a prospect (signed out): landing, signup, sign-in, the invite page, then a real signup
  through the verification mail to the ready workspace;
- dana@acme.example (admin): /app/, members, billing on the trial, checkout, the payment,
  the invoice, billing once paid, the add-seats price, the workspace, the feedback report,
  API keys, /api/;
- sam@acme.example (member): /app/, the community list, a question, ask;
- the in-product demo accounts (gina, gus, ian, uma): their workspace in the demo product with
  the kit's message;
- hana@hooli.example (admin, purchase-order terms): billing's add-ons, the price page of
  Premium support, the training page;
- the channel partners (partners_demo): partner@northwind.example (Northwind Partners' admin)
  on its dashboard, its customer Hooli's page, buying on its behalf, a quote, the requests
  inbox and the invite form; ivy@hooli.example (Hooli's admin) on its home, its partner
  page, asking the partner, moving to direct billing, ending the partnership and the activity
  log; dana@acme.example with Northwind's invitation and the directory;
- staff@flywheel.localhost: every staff page (the partners page too);
- the dev mailbox and one email.

Each page is written as NN-role-page-WIDTH.png into --out (default var/screenshots/, emptied
of earlier PNGs first). --docs also copies the main ones into docs/screenshots/ for the
README. Everything the script started is stopped when it ends, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PASSWORD = "flywheel-demo"  # noqa: S105 - the demo accounts' documented password
PROSPECT_PASSWORD = "plum-Orchard-47-kettle"  # noqa: S105 - a made-up account in a throwaway database
WIDTHS = {1280: 800, 390: 844}
DEMO_COMMANDS = ["demo_data", "onboarding_demo", "community_demo", "feedback_demo", "inproduct_demo", "addons_demo", "partners_demo", "activity_demo"]
TIMEOUT_MS = 30_000

# The pictures docs/screenshots/ keeps (README.md shows them): shot name -> file name.
DOCS = {
    "prospect-landing-1280": "landing-1280.png",
    "prospect-landing-390": "landing-390.png",
    "prospect-signup-1280": "signup-1280.png",
    "prospect-workspace-ready-1280": "workspace-1280.png",
    "dana-app-1280": "app-1280.png",
    "dana-app-390": "app-390.png",
    "dana-billing-trial-1280": "billing-1280.png",
    "staff-funnel-1280": "staff-funnel-1280.png",
    "staff-usage-1280": "staff-usage-1280.png",
    "staff-usage-390": "staff-usage-390.png",
    "hana-addon-price-1280": "addon-confirm-po-1280.png",
    "hana-addon-price-390": "addon-confirm-po-390.png",
    "gina-tracker-trial-ends-1280": "in-product-trial-ends-1280.png",
    "uma-wiki-survey-390": "in-product-survey-390.png",
    "nora-partner-home-1280": "partner-dashboard-1280.png",
    "nora-partner-customer-1280": "partner-customer-1280.png",
    "ivy-partner-1280": "customer-partner-1280.png",
    "ivy-partner-390": "customer-partner-390.png",
    "ivy-direct-1280": "customer-direct-1280.png",
    "ivy-app-390": "customer-managed-app-390.png",
    "dana-partner-invitation-390": "customer-invitation-390.png",
    "staff-partners-1280": "staff-partners-1280.png",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_url(url: str, *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(url, timeout=2):  # noqa: S310 - a local http URL this script built
                return
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP error status: the server answers
                return
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f}s")


@dataclass
class System:
    """Flywheel's processes (web, worker, localstripe) on a throwaway directory."""

    var_dir: Path
    web_port: int = field(default_factory=free_port)
    stripe_port: int = field(default_factory=free_port)
    product_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in {"DATABASE_URL", "REDIS_URL", "MAIL_DIR", "DJANGO_SETTINGS_MODULE", "CELERY_QUEUE",
                              "EMAIL_HOST", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "FLYWHEEL_ENV"}}
        env.update({
            "FLYWHEEL_VAR_DIR": str(self.var_dir),
            "SITE_URL": self.url,
            "LOCALSTRIPE_PORT": str(self.stripe_port),
            "DEMO_PRODUCT_URL": f"http://127.0.0.1:{self.product_port}",
            "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET", "whsec_flywheel_local"),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def manage(self, *args: str) -> None:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(),  # noqa: S603
                                capture_output=True, text=True, check=False)
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        print(f"  manage.py {' '.join(args)} ({time.monotonic() - started:.0f}s)", flush=True)

    def spawn(self, name: str, *args: str) -> None:
        log = open(self.var_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen(  # noqa: S603
            [sys.executable, *args], cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        ))

    def start(self) -> None:
        print(f"Preparing demo data in {self.var_dir}", flush=True)
        available = subprocess.run([sys.executable, "manage.py", "help", "--commands"], cwd=ROOT,  # noqa: S603
                                   env=self.env(), capture_output=True, text=True, check=True).stdout.split()
        if "dev_setup" in available:  # what `make run` does, in one process, where it exists
            self.manage("dev_setup")
        else:
            self.manage("migrate", "--noinput")
            self.manage("catalog_sync")
            for command in DEMO_COMMANDS:
                if command in available:
                    self.manage(command)
        self.spawn("stripe", "-m", "billing.localstripe_server", "--port", str(self.stripe_port),
                   "--webhook-url", f"{self.url}/stripe/webhook",
                   "--webhook-secret", self.env()["STRIPE_WEBHOOK_SECRET"])
        self.spawn("worker", "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--pool=threads",
                   "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat")
        self.spawn("web", "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.web_port}")
        # The demo product reads its secrets from var/demo-product.env, which dev_setup wrote.
        self.spawn("product", "-m", "demo_product", "runserver", "--noreload", f"127.0.0.1:{self.product_port}")
        wait_for_url(f"http://127.0.0.1:{self.stripe_port}/js.stripe.com/v3/", what="localstripe")
        wait_for_url(f"{self.url}/", what="the web server")
        wait_for_url(f"http://127.0.0.1:{self.product_port}/", what="the demo product")
        print(f"Flywheel is up at {self.url}", flush=True)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.var_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class Camera:
    """Takes the pictures: one browser, one context per person and width."""

    def __init__(self, browser, base_url: str, out: Path) -> None:
        self.browser = browser
        self.base_url = base_url
        self.out = out
        self.numbers: dict[str, int] = {}
        self.taken: list[Path] = []
        self.failed: list[str] = []

    def person(self, width: int, email: str | None = None):
        context = self.browser.new_context(base_url=self.base_url, viewport={"width": width, "height": WIDTHS[width]})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        if email:
            page.goto("/accounts/login/")
            page.fill("input[name=login]", email)
            page.fill("input[name=password]", PASSWORD)
            page.click("main form button[type=submit], form button[type=submit]")
            page.wait_for_url(lambda url: "/accounts/login" not in url)
        return page

    def shoot(self, page, name: str, path: str | None = None) -> None:
        """Open `path` (or stay on the current page) and write its full-page picture. A page has
        one number at both widths, so that its two pictures sort side by side."""
        width = page.viewport_size["width"]
        label = f"{name}-{width}"
        number = self.numbers.setdefault(name, len(self.numbers) + 1)
        try:
            status = None
            if path is not None:
                response = page.goto(path)
                status = response.status if response is not None else None
            page.wait_for_load_state("networkidle")
            file = self.out / f"{number:02d}-{label}.png"
            page.screenshot(path=str(file), full_page=True)
            self.taken.append(file)
            if status is not None and status >= 400:  # pictured, and listed: a page should not answer so
                self.failed.append(f"{label} ({path}): answered HTTP {status}")
        except Exception as error:  # noqa: BLE001 - one missing picture must not lose the others
            self.failed.append(f"{label} ({path or page.url}): {str(error).splitlines()[0]}")
            page.goto("about:blank")  # a failed navigation must not interrupt the next one

    def step(self, what: str, action) -> bool:
        """An action between pictures (a form to submit); a failure is reported, not raised."""
        try:
            action()
            return True
        except Exception as error:  # noqa: BLE001
            self.failed.append(f"{what}: {str(error).splitlines()[0]}")
            return False


def first_href(page, selector: str) -> str | None:
    link = page.locator(selector).first
    return link.get_attribute("href") if link.count() else None


def newest_mail(page, address: str, subject: str, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"/dev/mailbox/?to={address}")
        links = page.locator("a").filter(has_text=subject)
        if links.count():
            links.first.click()
            page.wait_for_load_state()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no mail {subject!r} to {address} within {timeout:.0f}s")
        page.wait_for_timeout(500)


def prospect(camera: Camera, width: int) -> None:
    page = camera.person(width)
    camera.shoot(page, "prospect-landing", "/")
    camera.shoot(page, "prospect-signup", "/signup?product=tracker&edition=standard")
    email = f"robin-{width}@example.com"

    def sign_up() -> None:
        form = page.locator("form").filter(has=page.locator("input[name=email]")).first
        form.locator("input[name=email]").fill(email)
        for name in ("password1", "password2", "password"):
            field = form.locator(f"input[name={name}]")
            if field.count():
                field.fill(PROSPECT_PASSWORD)
        organization = form.locator("input[name=organization_name]")
        if organization.count():
            organization.fill(f"Robin's Studio {width}")
        form.locator("button[type=submit]").last.click()
        page.wait_for_url(lambda url: "/accounts/signup" not in url)

    if camera.step(f"prospect signup at {width}", sign_up):
        camera.shoot(page, "prospect-verify-sent")

        def verify() -> None:
            newest_mail(page, email, "onfirm")
            camera.shoot(page, "prospect-verification-mail")
            page.locator("a[href*='/accounts/confirm-email/']").first.click()
            page.wait_for_load_state()
            camera.shoot(page, "prospect-confirm-email")
            confirm = page.locator("main form button[type=submit], form button[type=submit]")
            if confirm.count():
                confirm.first.click()
                page.wait_for_url(lambda url: "/accounts/confirm-email/" not in url)

        if camera.step(f"prospect verification at {width}", verify):
            camera.shoot(page, "prospect-workspace-being-prepared")

            def ready() -> None:
                deadline = time.monotonic() + 60
                while "/w/" not in page.url and time.monotonic() < deadline:
                    link = page.locator("#open-workspace")
                    if link.count() and link.is_visible():
                        link.click()
                        page.wait_for_url("**/w/**")
                        break
                    page.wait_for_timeout(500)
                if "/w/" not in page.url:
                    raise RuntimeError(f"the workspace was not ready within 60s (still on {page.url})")

            if camera.step(f"prospect workspace at {width}", ready):
                camera.shoot(page, "prospect-workspace-ready")
    page.context.close()

    page = camera.person(width)
    camera.shoot(page, "prospect-login", "/accounts/login/")
    camera.shoot(page, "prospect-password-reset", "/accounts/password/reset/")
    page.context.close()


def invitee(camera: Camera, width: int) -> None:
    page = camera.person(width)

    def open_invite() -> None:
        newest_mail(page, "alex@acme.example", "invited")
        camera.shoot(page, "invitee-invite-mail")
        href = first_href(page, "a[href*='/invites/']")
        if not href:
            raise RuntimeError("the invite mail has no /invites/ link")
        page.goto(href)

    if camera.step(f"invite link at {width}", open_invite):
        camera.shoot(page, "invitee-invite-landing")
        create = page.get_by_role("link", name="Create an account")
        if create.count():
            create.first.click()
            camera.shoot(page, "invitee-signup")
    camera.shoot(page, "dev-mailbox", "/dev/mailbox/")
    page.context.close()


def admin_on_trial(camera: Camera, width: int) -> None:
    page = camera.person(width, "dana@acme.example")
    camera.shoot(page, "dana-app", "/app/")
    workspace = first_href(page, "a[href^='/w/']")
    camera.shoot(page, "dana-members", "/app/members/")
    camera.shoot(page, "dana-billing-trial", "/billing/")
    checkout = first_href(page, "a[href^='/billing/checkout/']")
    if checkout:
        camera.shoot(page, "dana-checkout", checkout)
    if workspace:
        camera.shoot(page, "dana-workspace", workspace)
    camera.shoot(page, "dana-feedback-report", "/app/feedback/")
    camera.shoot(page, "dana-api-keys", "/app/api-keys/")
    camera.shoot(page, "dana-api", "/api/")
    camera.shoot(page, "dana-api-docs", "/api/docs")
    page.context.close()


def in_product(camera: Camera, width: int) -> None:
    """The demo product's workspaces with the kit's message for each in-product demo account."""
    for email, name in (("gina@globex.example", "gina-tracker-trial-ends"), ("gus@globex.example", "gus-tracker-ask-admin"),
                        ("ian@initech.example", "ian-tracker-seat-limit"), ("uma@umbrella.example", "uma-wiki-survey")):
        page = camera.person(width, email)
        page.goto("/app/")
        workspace = first_href(page, "a[href^='/w/']")
        if workspace is None:
            camera.failed.append(f"{name}-{width}: no workspace link on /app/")
        else:
            camera.shoot(page, name, workspace)
        page.context.close()


def admin_buys(camera: Camera) -> None:
    """Dana buys Tracker Standard by card (once, at 1280) so that there is an invoice."""
    page = camera.person(1280, "dana@acme.example")

    def buy() -> None:
        page.goto("/billing/")
        page.locator("a[href^='/billing/checkout/']").first.click()
        card = page.locator("#card-element")
        card.get_by_label("Card number").fill("4242424242424242")
        card.get_by_label("Expiry month (MM)").fill("12")
        card.get_by_label("Expiry year (YY)").fill("34")
        card.get_by_label("Security code (CVC)").fill("123")
        postal = card.get_by_label("Postal code")
        if postal.count():
            postal.fill("10001")
        page.click("#pay")
        page.wait_for_selector("#payment[data-status=succeeded]", timeout=60_000)

    if camera.step("dana buys Tracker Standard", buy):
        camera.shoot(page, "dana-payment-succeeded")
    page.context.close()


def admin_paid(camera: Camera, width: int) -> None:
    page = camera.person(width, "dana@acme.example")
    camera.shoot(page, "dana-billing-paid", "/billing/")
    invoice = first_href(page, "a[href^='/billing/invoices/']:not([href$='.pdf'])")
    payment = first_href(page, "a[href^='/billing/payments/']")

    def seats_preview() -> None:
        form = page.locator("form.add-seats").first
        form.locator("input[name=seats]").fill("3")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/billing/seats/**")

    if camera.step(f"add seats preview at {width}", seats_preview):
        camera.shoot(page, "dana-add-seats-price")
    if invoice:
        camera.shoot(page, "dana-invoice", invoice)
    else:
        camera.failed.append(f"dana-invoice-{width}: no invoice link on /billing/")
    if payment:
        camera.shoot(page, "dana-payment", payment)
    camera.shoot(page, "dana-card", "/billing/card/")
    page.context.close()


def member(camera: Camera, width: int) -> None:
    page = camera.person(width, "sam@acme.example")
    camera.shoot(page, "sam-app", "/app/")
    camera.shoot(page, "sam-community", "/community/")
    question = first_href(page, "a[href^='/community/q/']")
    if question:
        camera.shoot(page, "sam-community-question", question)
    camera.shoot(page, "sam-community-ask", "/community/ask/")
    camera.shoot(page, "sam-members", "/app/members/")
    page.context.close()


def admin_addons(camera: Camera, width: int) -> None:
    """hana@hooli.example (addons_demo): Hooli's add-ons on billing, the price page of Premium
    support (purchase-order wording), the training page."""
    page = camera.person(width, "hana@hooli.example")
    camera.shoot(page, "hana-billing-addons", "/billing/")
    confirm = first_href(page, "#add-tracker-premium-support")
    if confirm:
        camera.shoot(page, "hana-addon-price", confirm)
    camera.shoot(page, "hana-training", "/billing/training/")
    page.context.close()


def partners(camera: Camera, width: int) -> None:
    """The channel partners' pages on partners_demo's data (docs/partners.md): the partner's
    side, its linked customer's side, and a customer with an invitation waiting."""
    page = camera.person(width, "partner@northwind.example")
    camera.shoot(page, "nora-partner-home", "/partner/")
    customer = first_href(page, "main a[href^='/partner/customers/']")
    if customer:
        camera.shoot(page, "nora-partner-customer", customer)
        camera.shoot(page, "nora-partner-manage", f"{customer}manage/")
        camera.shoot(page, "nora-quote-new", f"{customer}quotes/new/")
    else:
        camera.failed.append(f"nora-partner-customer-{width}: no customer link on /partner/")
    camera.shoot(page, "nora-partner-quotes", "/partner/quotes/")
    quote = first_href(page, "main a[href^='/quotes/']:not([href$='.pdf'])")
    if quote:
        camera.shoot(page, "nora-quote", quote)
    camera.shoot(page, "nora-partner-requests", "/partner/requests/")
    camera.shoot(page, "nora-partner-invite", "/partner/invite/")
    page.context.close()

    page = camera.person(width, "ivy@hooli.example")
    camera.shoot(page, "ivy-app", "/app/")
    camera.shoot(page, "ivy-partner", "/app/partner/")
    camera.shoot(page, "ivy-ask", "/app/partner/ask/?product=tracker&kind=seats")
    camera.shoot(page, "ivy-direct", "/app/partner/direct/")
    camera.shoot(page, "ivy-end", "/app/partner/end/")
    camera.shoot(page, "ivy-activity", "/app/partner/activity/")
    camera.shoot(page, "ivy-billing", "/billing/")
    page.context.close()

    page = camera.person(width, "dana@acme.example")
    camera.shoot(page, "dana-partner-invitation", "/app/partner/")
    camera.shoot(page, "dana-partner-directory", "/app/partner/directory/")
    page.context.close()


def staff(camera: Camera, width: int) -> None:
    page = camera.person(width, "staff@flywheel.localhost")
    camera.shoot(page, "staff-after-sign-in")
    camera.shoot(page, "staff-funnel", "/staff/funnel/")
    camera.shoot(page, "staff-usage", "/staff/usage/")
    camera.shoot(page, "staff-experiments", "/staff/experiments/")
    experiment = first_href(page, "main a[href^='/staff/experiments/']")
    if experiment:
        camera.shoot(page, "staff-experiment", experiment)
    camera.shoot(page, "staff-onboarding", "/staff/onboarding/")
    camera.shoot(page, "staff-nps", "/staff/feedback/")
    camera.shoot(page, "staff-nps-follow-ups", "/staff/feedback/follow-ups/")
    camera.shoot(page, "staff-support-queue", "/staff/community/queue/")
    camera.shoot(page, "staff-community-metrics", "/staff/community/metrics/")
    camera.shoot(page, "staff-community-moderation", "/staff/community/moderation/")
    camera.shoot(page, "staff-sales-leads", "/staff/sales-leads/")
    camera.shoot(page, "staff-training", "/staff/training/")
    camera.shoot(page, "staff-partners", "/staff/partners/")
    page.context.close()


def take_all(system: System, out: Path) -> Camera:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        camera = Camera(browser, system.url, out)
        try:
            for width in WIDTHS:
                prospect(camera, width)
                invitee(camera, width)
                admin_on_trial(camera, width)
                in_product(camera, width)
            admin_buys(camera)
            for width in WIDTHS:
                admin_paid(camera, width)
                admin_addons(camera, width)
                member(camera, width)
                partners(camera, width)
                staff(camera, width)
        finally:
            browser.close()
    return camera


def copy_docs(camera: Camera) -> list[Path]:
    docs = ROOT / "docs" / "screenshots"
    docs.mkdir(parents=True, exist_ok=True)
    copied = []
    for file in camera.taken:
        shot = file.stem.split("-", 1)[1]
        if shot in DOCS:
            target = docs / DOCS[shot]
            shutil.copyfile(file, target)
            copied.append(target)
    return copied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "screenshots", help="folder for the PNGs")
    parser.add_argument("--docs", action="store_true", help="also copy the main ones into docs/screenshots/")
    parser.add_argument("--keep", action="store_true", help="keep the temporary system directory (logs, mail)")
    arguments = parser.parse_args()

    out = arguments.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    started = time.monotonic()
    system = System(var_dir=Path(tempfile.mkdtemp(prefix="flywheel-screenshots-")))
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        system.start()
        camera = take_all(system, out)
    except BaseException:
        for name in ("web", "worker", "stripe"):
            if tail := system.log_tail(name):
                print(f"--- {name} log (last lines) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        system.stop()
        if arguments.keep:
            print(f"System directory kept: {system.var_dir}")
        else:
            shutil.rmtree(system.var_dir, ignore_errors=True)

    print(f"{len(camera.taken)} screenshots in {out} ({time.monotonic() - started:.0f}s)")
    if arguments.docs:
        copied = copy_docs(camera)
        print(f"{len(copied)} copied into {ROOT / 'docs' / 'screenshots'}")
    if camera.failed:
        print(f"{len(camera.failed)} could not be taken:", file=sys.stderr)
        for failure in camera.failed:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
