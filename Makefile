# `make run` starts Tern on SQLite; `make test` runs every test. Both first make sure the one system library
# Tern needs (libargon2) is installed; `make test` also installs the two Python libraries the interop tests verify
# signatures with (standardwebhooks and svix, from PyPI).
.PHONY: run test deps pydeps build

deps:
	@if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libargon2; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing libargon2-dev and pkg-config with apt-get…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libargon2-dev pkg-config >/dev/null; \
	else \
		echo "Tern needs libargon2. Run: sudo apt-get install -y libargon2-dev pkg-config"; exit 1; \
	fi

pydeps:
	@if python3 -c 'import standardwebhooks, svix' >/dev/null 2>&1; then :; \
	elif python3 -m pip --version >/dev/null 2>&1; then \
		echo "Installing the Python libraries standardwebhooks and svix (interop tests)…"; \
		python3 -m pip install --quiet --disable-pip-version-check standardwebhooks svix 2>/dev/null \
			|| python3 -m pip install --quiet --disable-pip-version-check --break-system-packages standardwebhooks svix; \
	else \
		echo "The interop tests need Python 3 with pip. Run: sudo apt-get install -y python3-pip"; exit 1; \
	fi

run: deps
	swift run tern serve

test: deps pydeps
	swift test

build: deps
	swift build
