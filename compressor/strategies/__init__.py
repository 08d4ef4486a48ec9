"""Built-in strategies. Each module is a plugin registered through the same hooks as
third-party ones (see ``compressor.engine.plugin_host.DEFAULT_PLUGINS``)."""
