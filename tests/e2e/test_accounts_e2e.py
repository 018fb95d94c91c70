"""Accounts in a real browser: register, log out, log in, bad password message."""


def register(page, base, username, password="correct horse"):
    page.goto(base + "/register")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.fill("input[name=confirm]", password)
    page.click("button[type=submit]")


def test_register_logout_login(live_server, browser, shoot):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    register(page, live_server, "erin")
    assert page.url.endswith("/datasets")
    assert "Welcome, erin" in page.content()
    shoot(page, "datasets_empty_1280")
    page.click("text=Log out")
    page.goto(live_server + "/login")
    page.fill("input[name=username]", "erin")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong username or password." in page.content()
    page.fill("input[name=password]", "correct horse")
    page.click("button[type=submit]")
    assert page.url.endswith("/datasets")
    page.close()


def test_phone_width_menu(live_server, browser, shoot):
    page = browser.new_page(viewport={"width": 390, "height": 800})
    page.goto(live_server + "/login")
    shoot(page, "login_390")
    assert page.is_visible("label.nav-burger")
    assert not page.is_visible("nav.nav a[href='/register']")
    page.click("label.nav-burger")
    assert page.is_visible("nav.nav a[href='/register']")
    page.close()
