"""One settings resolver (farm.local.settings): CLI > LANFARM_* > file > default, and where each value came from;
the token, models folder, discovery and interfaces built on it; "lite" from the engines registered."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from farm.engines import installed
from farm.engines.opencv_inpaint import DESCRIPTOR as CV2
from farm.engines.registry import EngineEntry, Registry
from farm.engines.simulated import DESCRIPTOR as SIM
from farm.local import paths, settings
from farm.local.settings import Deferred, SettingError, parse_bool, parse_path, resolve
from farm.local.token import find_token, load_or_create_token, resolve_token, save_token, token_path

TOKEN_A, TOKEN_B, TOKEN_C = "a" * 32, "b" * 32, "c" * 32


# --- the resolver -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cli", "env", "file", "value", "origin", "source"),
    [
        (1, {"LANFARM_PORT": "2"}, 3, 1, "cli", "--port"),
        (None, {"LANFARM_PORT": "2"}, 3, 2, "env", "LANFARM_PORT"),
        (None, {}, 3, 3, "file", "node.toml port"),
        (None, {"LANFARM_PORT": "  "}, 3, 3, "file", "node.toml port"),  # blank: not given
        (None, {"LANFARM_PORTS": "2"}, None, 7788, "default", "default"),
    ],
)
def test_resolve_takes_the_first_given_source_and_says_which(
    cli: int | None, env: dict[str, str], file: int | None, value: int, origin: str, source: str
) -> None:
    found = resolve("port", default=7788, parse=int, cli=cli, env=env, file=file, file_label="node.toml")
    assert (found.name, found.value, found.origin, found.source) == ("port", value, origin, source)


def test_resolve_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANFARM_SLOTS", "4")
    assert resolve("slots", default=1, parse=int).value == 4
    monkeypatch.delenv("LANFARM_SLOTS")
    assert resolve("slots", default=1, parse=int).origin == "default"


@pytest.mark.parametrize(
    ("cli", "env", "file", "words"),
    [
        ("x", {"LANFARM_SLOTS": "2"}, None, "--slots"),  # the first given source decides, even if bad
        (None, {"LANFARM_SLOTS": "two"}, 3, "LANFARM_SLOTS"),
        (None, {}, "three", "app.ini slots"),
    ],
)
def test_a_bad_value_is_an_error_naming_its_source(
    cli: str | None, env: dict[str, str], file: str | None, words: str
) -> None:
    with pytest.raises(SettingError, match=words) as caught:
        resolve("slots", default=1, parse=int, cli=cli, env=env, file=file, file_label="app.ini")
    assert isinstance(caught.value, ValueError)  # callers catching ValueError still see it


def test_a_deferred_source_is_read_only_when_it_decides() -> None:
    reads: list[str] = []

    def source(name: str, value: str | None) -> Deferred:
        return Deferred(lambda: reads.append(name) or value)

    found = resolve("x", default="d", parse=str, env={"LANFARM_X": "e"}, file=source("file", "f"))
    assert found.value == "e" and reads == []
    found = resolve("x", default="d", parse=str, env={}, cli=source("cli", None), file=source("file", "f"))
    assert (found.value, found.origin) == ("f", "file") and reads == ["cli", "file"]


def test_declared_setting_uses_its_own_names() -> None:
    port = settings.Setting("port", int, 7788)
    assert (port.resolve(env={"LANFARM_PORT": "9"}).value, port.resolve().origin) == (9, "default")
    tagged = settings.Setting("discovery", parse_bool, True, env_var="LANFARM_DISCOVERY", flag="--no-discovery")
    with pytest.raises(SettingError, match="LANFARM_DISCOVERY"):
        tagged.resolve(env={"LANFARM_DISCOVERY": "maybe"})


@pytest.mark.parametrize(("text", "value"), [("on", True), ("Yes", True), ("1", True), ("OFF", False), ("no", False)])
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_parse_path_expands_home_and_refuses_nothing() -> None:
    assert parse_path("~/m") == Path.home() / "m"
    with pytest.raises(ValueError):
        parse_path("  ")


# --- the farm token: --token-file > LANFARM_TOKEN > the saved token file ---------------------------------------


def test_token_precedence_and_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = tmp_path / "given-token"
    given.write_text(TOKEN_A + "\n")
    save_token(TOKEN_C)
    monkeypatch.setenv("LANFARM_TOKEN", TOKEN_B)

    cli = resolve_token(given)
    assert (cli.value, cli.origin, cli.source) == (TOKEN_A, "cli", "--token-file")
    env = resolve_token()
    assert (env.value, env.origin, env.source) == (TOKEN_B, "env", "LANFARM_TOKEN")
    monkeypatch.delenv("LANFARM_TOKEN")
    saved = resolve_token()
    assert (saved.value, saved.origin, saved.source) == (TOKEN_C, "file", f"token file {token_path()}")
    token_path().unlink()
    none = resolve_token()
    assert (none.value, none.origin) == (None, "default")


def test_find_token_and_load_or_create_follow_the_same_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = tmp_path / "given-token"
    given.write_text(TOKEN_A)
    assert find_token() is None and not token_path().exists()  # finding never creates
    created = load_or_create_token()
    assert token_path().read_text().strip() == created and find_token() == created
    monkeypatch.setenv("LANFARM_TOKEN", f" {TOKEN_B} ")
    assert find_token() == load_or_create_token() == TOKEN_B
    assert load_or_create_token(token_path()) == TOKEN_B  # the app and `lanfarm token` pass the path: env wins
    assert find_token(given) == load_or_create_token(token_file=given) == TOKEN_A


def test_the_saved_token_file_is_not_read_when_the_environment_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    token_path().parent.mkdir(parents=True, exist_ok=True)
    token_path().write_text("")  # unusable, but never looked at
    monkeypatch.setenv("LANFARM_TOKEN", TOKEN_B)
    assert find_token() == TOKEN_B
    monkeypatch.delenv("LANFARM_TOKEN")
    with pytest.raises(ValueError, match="holds no farm token"):
        find_token()


def test_a_token_file_from_a_settings_file_or_the_environment_is_below_lanfarm_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = tmp_path / "named-token"
    named.write_text(TOKEN_A)
    save_token(TOKEN_C)
    from_file = resolve_token(named, origin="file")
    assert (from_file.value, from_file.origin) == (TOKEN_A, "file")  # it takes the saved file's place
    from_env = resolve_token(named, origin="env")
    assert (from_env.value, from_env.origin, from_env.source) == (TOKEN_A, "env", f"LANFARM_TOKEN_FILE ({named})")
    monkeypatch.setenv("LANFARM_TOKEN", TOKEN_B)
    assert resolve_token(named, origin="file").value == resolve_token(named, origin="env").value == TOKEN_B
    assert resolve_token(named, origin="cli").value == TOKEN_A


# --- the models folder, discovery and interfaces ----------------------------------------------------------------


def test_models_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lanfarm_home: Path) -> None:
    default = paths.default_models_dir()
    assert default == lanfarm_home / "data" / "models"
    env = {"LANFARM_MODELS_DIR": str(tmp_path / "env")}
    cases = [
        (settings.models_dir(tmp_path / "cli", default=default, env=env, file="f"), tmp_path / "cli", "cli"),
        (settings.models_dir(default=default, env=env, file=str(tmp_path / "f")), tmp_path / "env", "env"),
        (settings.models_dir(default=default, env={}, file=str(tmp_path / "f")), tmp_path / "f", "file"),
        (settings.models_dir(default=default, env={}), default, "default"),
    ]
    assert [(r.value, r.origin) for r, *_ in cases] == [(v, o) for _, v, o in cases]
    monkeypatch.delenv("LANFARM_MODELS_DIR", raising=False)
    assert paths.models_dir() == default
    monkeypatch.setenv("LANFARM_MODELS_DIR", str(tmp_path / "env"))
    assert paths.models_dir() == tmp_path / "env"  # what default_registry and the node fall back to


@pytest.mark.parametrize(
    ("cli", "env", "file", "value", "origin"),
    [
        (False, {"LANFARM_DISCOVERY": "on"}, True, False, "cli"),  # --no-discovery
        (None, {"LANFARM_DISCOVERY": "off"}, True, False, "env"),
        (None, {"LANFARM_DISCOVERY": "1"}, False, True, "env"),  # env beats the app's file both ways
        (None, {}, False, False, "file"),
        (None, {"LANFARM_DISCOVERY": ""}, None, True, "default"),
    ],
)
def test_discovery_precedence(
    cli: bool | None, env: dict[str, str], file: bool | None, value: bool, origin: str
) -> None:
    found = settings.discovery_enabled(cli, env=env, file=file)
    assert (found.value, found.origin) == (value, origin)


def test_discovery_refuses_a_value_it_cannot_read() -> None:
    with pytest.raises(SettingError, match="LANFARM_DISCOVERY"):
        settings.discovery_enabled(env={"LANFARM_DISCOVERY": "sometimes"})


def test_discovery_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANFARM_DISCOVERY", "off")
    assert settings.discovery_enabled().value is False
    assert settings.discovery_enabled(False).source == "--no-discovery"


@pytest.mark.parametrize(
    ("cli", "env", "file", "value", "origin"),
    [
        (["10.0.0.1"], {"LANFARM_INTERFACES": "10.0.0.2"}, ["10.0.0.3"], ("10.0.0.1",), "cli"),
        ([], {"LANFARM_INTERFACES": "10.0.0.2, 10.0.0.4,"}, None, ("10.0.0.2", "10.0.0.4"), "env"),  # [] not given
        (None, {}, ["10.0.0.3"], ("10.0.0.3",), "file"),
        (None, {}, None, (), "default"),
    ],
)
def test_interfaces_precedence(
    cli: list[str] | None, env: dict[str, str], file: list[str] | None, value: tuple[str, ...], origin: str
) -> None:
    found = settings.interfaces(cli, env=env, file=file)
    assert (found.value, found.origin) == (value, origin)


# --- lite: no AI engine registered --------------------------------------------------------------------------------


def _only_missing(*missing: str) -> object:
    return lambda names: [n for n in names if n in missing]


def test_torch_and_spandrel_without_diffusers_is_not_lite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installed, "missing_modules", _only_missing("diffusers"))
    registry = installed.default_registry()
    assert {"lama", "upscale"} <= set(registry.ids()) and "sd-inpaint" not in registry.ids()
    assert registry.lite is False  # LaMa and upscale are registered (unavailable until a model is added)


def test_without_the_ai_libraries_only_cv2_is_registered_and_it_is_lite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installed, "missing_modules", _only_missing("torch", "spandrel", "diffusers"))
    registry = installed.default_registry(simulate=True)
    assert set(registry.ids()) == {"cv2", "sim", "sim-upscale"} and registry.lite is True


def test_everything_installed_is_not_lite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installed, "missing_modules", _only_missing())
    registry = installed.default_registry()
    assert "sd-inpaint" in registry.ids() and registry.lite is False


def _entries(*descriptors: object) -> Iterable[EngineEntry]:
    return [EngineEntry(d, lambda _m: None) for d in descriptors]  # type: ignore[arg-type]


def test_lite_is_about_registered_engines() -> None:
    assert Registry(_entries(CV2)).lite is True
    assert Registry(_entries(CV2, SIM)).lite is True  # the simulated GPU is no AI engine
    from dataclasses import replace

    assert Registry(_entries(CV2, replace(CV2, id="lama"))).lite is False


# --- the app's settings store: the environment beats app.ini and the token file ---------------------------------


@pytest.fixture
def store(tmp_path: Path) -> object:
    gui_settings = pytest.importorskip("gui.settings")
    return gui_settings.SettingsStore(tmp_path / "app.ini", tmp_path / "farm-token")


def test_app_models_dir_from_the_environment_beats_app_ini_even_after_a_save(
    store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from gui.settings import AppSettings, SettingsStore

    assert isinstance(store, SettingsStore)
    monkeypatch.delenv("LANFARM_MODELS_DIR", raising=False)
    store.save(AppSettings(models_dir=tmp_path / "saved"))
    assert store.load().models_dir == tmp_path / "saved" and store.origins()["models_dir"].origin == "file"

    monkeypatch.setenv("LANFARM_MODELS_DIR", str(tmp_path / "env"))
    loaded = store.load()
    assert loaded.models_dir == tmp_path / "env"
    assert (store.origins()["models_dir"].origin, store.origins()["models_dir"].source) == ("env", "LANFARM_MODELS_DIR")
    store.save(replace(loaded, quality=70))  # the environment's value is not written to app.ini
    assert store.load().models_dir == tmp_path / "env" and store.load().quality == 70
    monkeypatch.delenv("LANFARM_MODELS_DIR")
    assert store.load().models_dir == tmp_path / "saved"


def test_app_discovery_from_the_environment(store: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from gui.settings import AppSettings, SettingsStore

    assert isinstance(store, SettingsStore)
    store.save(AppSettings(discovery=True))
    monkeypatch.setenv("LANFARM_DISCOVERY", "off")
    assert store.load().discovery is False
    monkeypatch.setenv("LANFARM_DISCOVERY", "sometimes")  # unusable: ignored, the app still starts
    assert store.load().discovery is True and store.origins()["discovery"].origin == "file"


def test_app_token_from_the_environment_beats_the_token_file(
    store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gui.settings import SettingsStore

    assert isinstance(store, SettingsStore)
    saved = store.token()  # created in the store's token file
    assert (tmp_path / "farm-token").read_text().strip() == saved and store.token_setting().origin == "file"
    monkeypatch.setenv("LANFARM_TOKEN", TOKEN_B)
    assert store.token() == TOKEN_B and store.token_setting().source == "LANFARM_TOKEN"
    assert store.set_token(TOKEN_A) == TOKEN_B  # saved for later, but the environment stays in effect
    assert (tmp_path / "farm-token").read_text().strip() == TOKEN_A
    monkeypatch.delenv("LANFARM_TOKEN")
    assert store.token() == TOKEN_A and store.regenerate_token() not in (TOKEN_A, TOKEN_B)
