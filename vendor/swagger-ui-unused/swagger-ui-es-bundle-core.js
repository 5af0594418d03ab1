// Not shipped with Simple Chat: /api/docs/ loads swagger-ui-bundle.js (see .cargo/config.toml).
