"""Configuration: from "where does the config come from" to one resolved config per member.

``pipeline`` calls the stages in order; each stage imports only those below it (checked by
import-linter, see pyproject.toml):

    pipeline    resolve(): sources -> overrides -> compose -> grid -> members
    compose     a plain config merged by OmegaConf; a tree by Hydra's Compose API; the cache
    reads       which keys a script reads (the typo guard when no config is found)
    sources     finding a config and loading files within limits; what a tree holds
    resolvers   OmegaConf's resolvers while yanex resolves; a member's config resolved
    hydra_app   a @hydra.main app read from its source; its command line; its config checked
    overrides   ParamOverride, the grammar's fast path, Hydra's parser, rendering values back
    sweeps      sweep functions and the grid they span

Nothing is imported here: ``import yanex.config.overrides`` costs that module alone.
"""
