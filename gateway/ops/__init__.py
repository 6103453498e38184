"""Operations adapters: logging setup, systemd notification, metrics and health over HTTP."""
