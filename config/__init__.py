"""Settings: schema, defaults, loading and validation. Imports nothing of ours."""

from config.loader import (
    DEFAULT_FILENAME, ConfigError, configured_secrets, example_text, find_config, load_file, load_settings, parse_settings, resolve_secret,
    with_environment,
)
from config.schema import (
    AnalysisSettings,
    AudienceSettings,
    DatabaseSettings,
    EngagementSettings,
    PlatformRules,
    QuerySettings,
    ScheduleSettings,
    Settings,
    SourceSettings,
    TemplateSettings,
)

__all__ = [
    "DEFAULT_FILENAME", "AnalysisSettings", "AudienceSettings", "ConfigError", "DatabaseSettings", "EngagementSettings",
    "PlatformRules", "QuerySettings", "ScheduleSettings", "Settings", "SourceSettings", "TemplateSettings",
    "configured_secrets", "example_text", "find_config", "load_file", "load_settings", "parse_settings", "resolve_secret",
    "with_environment",
]
