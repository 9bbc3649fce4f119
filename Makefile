# `make run` starts Tern on SQLite; `make test` runs every test. Both first make sure the one system library
# Tern needs (libargon2) is installed.
.PHONY: run test deps build

deps:
	@if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libargon2; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing libargon2-dev and pkg-config with apt-get…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libargon2-dev pkg-config >/dev/null; \
	else \
		echo "Tern needs libargon2. Run: sudo apt-get install -y libargon2-dev pkg-config"; exit 1; \
	fi

run: deps
	swift run tern serve

test: deps
	swift test

build: deps
	swift build
