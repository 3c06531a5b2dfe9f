"""Load and validate a campaign config.

Why generic: the schema is plain dataclasses, so one walker turns any TOML
mistake into a single message that names the file, the key path
(``queries[1].schedule``) and what is wrong, instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from importlib import resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from config.schema import GENERIC_SEND_MODES, NUMBER_RANGES, PlatformRules, Settings, SourceSettings

DEFAULT_FILENAME = "huaxiang.toml"


class ConfigError(Exception):
    """A config problem, phrased for the person who wrote the file."""

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + problem)


def find_config(explicit: str | os.PathLike | None, cwd: str | os.PathLike | None = None) -> Path | None:
    """Lookup order: an explicit path, then ./huaxiang.toml, then defaults (None)."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(str(p), "", "config file not found")
        return p
    candidate = Path(cwd or ".") / DEFAULT_FILENAME
    return candidate if candidate.is_file() else None


ENV_PREFIX = "HUAXIANG__"


def load_settings(explicit: str | os.PathLike | None = None, cwd: str | os.PathLike | None = None,
                  environ: Mapping[str, str] | None = None, rules: PlatformRules | None = None) -> Settings:
    """The config file (or defaults), then ``HUAXIANG__SECTION__KEY`` overrides
    from the environment: one run, one machine or a CI job can change a
    setting without editing the file everyone shares. ``rules``: see ``parse_settings``."""
    path = find_config(explicit, cwd)
    if path is None:
        return with_environment({}, "<defaults>", environ, rules)
    return with_environment(_read_toml(path), str(path), environ, rules)


def with_environment(raw: dict[str, Any], file: str, environ: Mapping[str, str] | None = None,
                     rules: PlatformRules | None = None) -> Settings:
    """Settings from ``raw`` (parsed TOML) with the environment's overrides
    applied; an override's mistake names its variable."""
    overrides = env_overrides(os.environ if environ is None else environ)
    if not overrides:
        return parse_settings(raw, file, rules)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    hints = typing.get_type_hints(Settings)
    for (section, key), (var, value) in overrides.items():
        kind = hints.get(section)
        if kind is not None and not dataclasses.is_dataclass(kind):
            raise ConfigError(f"environment variable {var}", section, "this section is a list; only [section] keys can be"
                              " overridden from the environment")
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(file, section, f"expected a table, got {type(table).__name__} {table!r}")
        if kind is not None and typing.get_type_hints(kind).get(key) is str and not isinstance(value, str):
            value = environ_text(var, environ)          # HUAXIANG__DATABASE__PATH=2024 is a name, not a number
        table[key] = value
    try:
        return parse_settings(raw, file, rules)
    except ConfigError as exc:
        for (section, key), (var, _value) in overrides.items():
            name = f"{section}.{key}"
            if exc.key == section or exc.key == name or exc.key.startswith((name + ".", name + "[")):
                raise ConfigError(f"environment variable {var}", exc.key, exc.problem) from None
        raise


def environ_text(var: str, environ: Mapping[str, str] | None) -> str:
    return (os.environ if environ is None else environ)[var]


def env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, Any]]:
    """``HUAXIANG__ANALYSIS__ENCODER=words`` -> {("analysis", "encoder"): (name, "words")}.

    A value is read as a TOML value when it is one (``20000``, ``true``,
    ``["a", "b"]``), else as a plain string.
    """
    out: dict[tuple[str, str], tuple[str, Any]] = {}
    for var, text in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX):].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"environment variable {var}", "", "expected HUAXIANG__SECTION__KEY (two names joined by"
                              " double underscores), e.g. HUAXIANG__ANALYSIS__ENCODER=words")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[(parts[0], parts[1])] = (var, value)
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from None


def load_file(path: str | os.PathLike, rules: PlatformRules | None = None) -> Settings:
    path = Path(path)
    return parse_settings(_read_toml(path), str(path), rules)


def parse_settings(raw: dict[str, Any], file: str = "<config>", rules: PlatformRules | None = None) -> Settings:
    """Typed, validated settings from parsed TOML.

    ``rules`` are the registered platform adapters' names, send modes and
    platform-only keys (the bot layer passes them: config imports nothing of
    ours); without them platform names are left to the adapter lookup.
    """
    settings = _build(Settings, raw, file, "")
    settings.origin = file
    _cross_check(settings, file)
    if rules is not None:
        _check_platforms(settings, raw, file, rules)
    return settings


def _check_platforms(s: Settings, raw: dict[str, Any], file: str, rules: PlatformRules) -> None:
    """Platform names and send modes the registered adapters know, and each
    platform-only key set only on sources of a platform that reads it."""
    platform_only = frozenset().union(*rules.keys.values())
    for i, src in enumerate(s.sources):
        if src.platform not in rules.keys:
            raise ConfigError(file, f"sources[{i}].platform", f"must be one of {_one_of(rules.keys)}, got {src.platform!r}")
        for key in sorted(platform_only & raw["sources"][i].keys() - rules.keys[src.platform]):
            takers = ", ".join(name for name, keys in rules.keys.items() if key in keys)
            raise ConfigError(file, f"sources[{i}].{key}", f"platform {src.platform!r} does not read it (only: {takers})")
    modes = (GENERIC_SEND_MODES[0], *rules.send_modes, *GENERIC_SEND_MODES[1:])
    if s.engagement.send_mode not in modes:
        raise ConfigError(file, "engagement.send_mode", f"must be one of {_one_of(modes)}, got {s.engagement.send_mode!r}")


def _one_of(names: Any) -> str:
    return " | ".join(repr(n) for n in names)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (list,):
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "true/false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, file: str, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(file, key, f"expected a table, got {type(value).__name__} {value!r}")
        return _build(tp, value, file, key)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(file, key, f"must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(file, key, f"expected a list, got {type(value).__name__} {value!r}")
        return [_convert(item_tp, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in get_args(tp):
            try:
                return _convert(option, value, file, key)
            except ConfigError:
                continue
        raise ConfigError(file, key, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ConfigError(file, key, f"number too large, got {str(value)[:20]}...") from None
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - schema uses only the types above
        return value
    raise ConfigError(file, key, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _build(cls: type, data: dict[str, Any], file: str, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            near = ", ".join(sorted(fields))
            raise ConfigError(file, _join(prefix, key), f"unknown key (known keys here: {near})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(prefix, name)
        if name in data:
            bounds = NUMBER_RANGES.get(cls, {}).get(name)
            try:
                value = _convert(hints[name], data[name], file, key)
            except ConfigError as exc:
                if bounds is None or exc.key != key:
                    raise
                raise ConfigError(file, key, f"{exc.problem} (allowed: from {bounds[0]:g} to {bounds[1]:g})") from None
            problem = number_problem(value, bounds)
            if problem:
                raise ConfigError(file, key, problem)
            check = f.metadata.get("check")
            if check is not None:
                problem = check(value)
                if problem:
                    raise ConfigError(file, key, problem)
            kwargs[name] = value
        elif f.default is None:
            raise ConfigError(file, key, "missing required key")
    return cls(**kwargs)


# For a number the schema gives no range: what SQLite and date arithmetic take.
GENERIC_RANGE = (-(2**53), 2**53)


def number_problem(value: Any, bounds: tuple[float, float] | None) -> str | None:
    """Why a config number is out of its range, or None (non-numbers pass)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    lo, hi = bounds or GENERIC_RANGE
    shown = f"{lo:g} to {hi:g}" if isinstance(lo, float) or isinstance(hi, float) else f"{lo} to {hi}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number from {shown}, got {value!r}"
    if not lo <= value <= hi:
        text = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"must be from {shown}, got {text}"
    return None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _cross_check(s: Settings, file: str) -> None:
    seen: set[str] = set()
    for i, src in enumerate(s.sources):
        if not src.user_agent.isascii() or not src.user_agent.isprintable():
            raise ConfigError(file, f"sources[{i}].user_agent", "HTTP headers carry printable ASCII only")
        for attr in ("base_url", "api_base_url"):
            problem = url_problem(getattr(src, attr))
            if problem:
                raise ConfigError(file, f"sources[{i}].{attr}", problem)
        if src.name in seen:
            raise ConfigError(file, f"sources[{i}].name", f"duplicate source name {src.name!r}")
        seen.add(src.name)
        for attr in ("cookie_file", "token_file"):
            p = getattr(src, attr)
            if p and not Path(p).expanduser().is_file():
                raise ConfigError(file, f"sources[{i}].{attr}", f"secret file {p!r} does not exist")
    qnames: set[str] = set()
    for i, q in enumerate(s.queries):
        if q.name in qnames:
            raise ConfigError(file, f"queries[{i}].name", f"duplicate query name {q.name!r}")
        qnames.add(q.name)
        if q.source not in seen:
            raise ConfigError(file, f"queries[{i}].source", f"no [[sources]] entry is named {q.source!r}")
    if s.engagement.send_source and s.engagement.send_source not in seen:
        raise ConfigError(file, "engagement.send_source", f"no [[sources]] entry is named {s.engagement.send_source!r}")
    problem = timezone_problem(s.engagement.timezone)
    if problem:
        raise ConfigError(file, "engagement.timezone", problem)
    _check_audience_names(s, file)
    if s.drafting.drafter == "llm":
        for key in ("base_url", "model"):
            if not getattr(s.drafting, key):
                raise ConfigError(file, f"drafting.{key}", "drafter = 'llm' needs it (an OpenAI-compatible API root"
                                  " like https://api.deepseek.com/v1, and a model name)")
    if s.analysis.leaders_share + s.analysis.engaged_share > 1:
        raise ConfigError(file, "analysis.engaged_share", "leaders_share + engaged_share must not exceed 1")


def url_problem(url: str) -> str | None:
    """Why an API root cannot be requested, or None (empty means the default)."""
    from urllib.parse import urlsplit

    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port                      # raises ValueError outside 0..65535
    except ValueError as exc:
        return f"not a usable URL {url!r} ({exc}); ports are from 1 to 65535"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not an http(s) URL {url!r}; use e.g. https://m.weibo.cn or http://127.0.0.1:8765"
    if port == 0:
        return f"port must be from 1 to 65535 in {url!r}"
    return None


def timezone_problem(name: str) -> str | None:
    """Why a time zone name cannot be used, or None. Checked at load so that
    ``plan`` and ``send`` never meet an unknown zone half way through."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai' or 'UTC'"
    return None


def default_cookie_file(source_name: str) -> Path:
    """Where ``huaxiang login`` keeps a source's session cookie when the source names
    no ``cookie_file``: ``$HUAXIANG_SECRETS_DIR`` or ``~/.config/huaxiang/secrets``,
    one file per source, readable by its owner only. Never inside the database."""
    base = os.environ.get("HUAXIANG_SECRETS_DIR") or str(Path("~/.config/huaxiang/secrets").expanduser())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_name) or "source"
    return Path(base).expanduser() / f"{safe}.cookie"


def _default_cookie(source: SourceSettings) -> str | None:
    try:
        value = default_cookie_file(source.name).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value or None


def _check_audience_names(s: Settings, file: str) -> None:
    """A template or library entry for an audience the campaign does not
    declare would never be used; when the campaign declares its audiences,
    such a name is refused (the usual cause is a typo)."""
    if not s.audiences:
        return   # names can then only be the analysis's cluster names, which the config cannot know
    declared = {a.name for a in s.audiences} | set(s.engagement.target_audiences)
    known = ", ".join(sorted(declared))
    for what, entries in (("templates", s.engagement.templates), ("library", s.engagement.library)):
        for i, t in enumerate(entries):
            if t.audience != "*" and t.audience not in declared:
                raise ConfigError(file, f"engagement.{what}[{i}].audience",
                                  f"{t.audience!r} names no audience; use * or one of: {known}"
                                  " ([[audiences]] names and [engagement].target_audiences)")
    ids: set[str] = set()
    for i, e in enumerate(s.engagement.library):
        if e.id in ids:
            raise ConfigError(file, f"engagement.library[{i}].id", f"duplicate library id {e.id!r}")
        ids.add(e.id)


def resolve_secret(settings: Settings, source: SourceSettings, kind: Literal["cookie", "token"]) -> str | None:
    """The cookie or token for a source, from the environment or a file.

    Returns None when the source declares no such secret. Raises ConfigError
    naming the key when it declares one that cannot be found. The value is
    never logged or stored; callers hand it straight to the HTTP client.
    """
    idx = settings.sources.index(source) if source in settings.sources else 0
    env_name = getattr(source, f"{kind}_env")
    file_name = getattr(source, f"{kind}_file")
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return _header_safe(value.strip(), settings.origin, f"sources[{idx}].{kind}_env",
                                f"environment variable {env_name}", kind)
        if kind == "cookie" and not file_name and _default_cookie(source):
            return _login_cookie(settings, source, idx)   # signed in with `huaxiang login` since
        if not file_name:
            raise ConfigError(settings.origin, f"sources[{idx}].{kind}_env", f"missing secret: environment variable {env_name} is not set")
    if file_name:
        p = Path(file_name).expanduser()
        try:
            value = p.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(settings.origin, f"sources[{idx}].{kind}_file", f"missing secret: cannot read {file_name!r} ({exc.strerror})") from None
        if not value:
            raise ConfigError(settings.origin, f"sources[{idx}].{kind}_file", f"missing secret: {file_name!r} is empty")
        return _header_safe(value, settings.origin, f"sources[{idx}].{kind}_file", repr(file_name), kind)
    if kind == "cookie":
        return _login_cookie(settings, source, idx)
    return None


def _login_cookie(settings: Settings, source: SourceSettings, idx: int) -> str | None:
    """The cookie ``huaxiang login`` saved for this source, checked like any other."""
    value = _default_cookie(source)
    if value is None:
        return None
    return _header_safe(value, settings.origin, f"sources[{idx}].cookie_file",
                        repr(str(default_cookie_file(source.name))), "cookie")


def _header_safe(value: str, file: str, key: str, where: str, kind: str) -> str:
    """A cookie or token travels in an HTTP header, which holds ASCII only; a
    pasted curly quote or Chinese character would abort every request with
    UnicodeEncodeError. Refused here, without echoing the secret."""
    bad = next((i for i, ch in enumerate(value) if not (" " <= ch <= "~" or ch == "\t")), None)
    if bad is not None:
        raise ConfigError(file, key, f"the {kind} in {where} has a character HTTP headers cannot carry "
                          f"(non-ASCII or control, at position {bad + 1}); copy it again from the browser or API console")
    return value


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """Every cookie and token the configured sources use (where readable), so
    logs, stored errors and exports can mask them. A cookie string is masked
    whole, pair by pair (``SUB=...``) and value by value."""
    found: list[str] = []
    for source in settings.sources:
        for kind in ("cookie", "token"):
            try:
                value = resolve_secret(settings, source, kind)  # type: ignore[arg-type]
            except ConfigError:
                continue
            if not value:
                continue
            found.append(value.strip())
            for part in value.split(";"):
                part = part.strip()
                if len(part) >= 8:
                    found.append(part)
                    if "=" in part:
                        found.append(part.split("=", 1)[1].strip())
    return tuple(dict.fromkeys(v for v in found if v))


def example_text() -> str:
    """The annotated example campaign config shipped with the package: ``init``
    writes it for the user to edit, ``demo`` runs the sandbox campaign from it."""
    return resources.files("config").joinpath("example.toml").read_text(encoding="utf-8")
