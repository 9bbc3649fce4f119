# `make run` starts Tern on SQLite; `make test` runs every test. Both first make sure the one system library
# Tern needs (libargon2) is installed. `make test` also installs what the tests drive: headless Chromium and its
# driver (Debian's chromium, chromium-driver) for the browser test, tinyproxy and openssl (egress proxy and TLS
# receivers), and from PyPI the Standard Webhooks and Svix libraries (signature interop), cryptography (Ed25519
# signatures), Selenium and schemathesis (API fuzzing).
.PHONY: run test deps testdeps build bench hot-text lint format

deps:
	@if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libargon2; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing libargon2-dev and pkg-config with apt-get…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libargon2-dev pkg-config >/dev/null; \
	else \
		echo "Tern needs libargon2. Run: sudo apt-get install -y libargon2-dev pkg-config"; exit 1; \
	fi

testdeps:
	@if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 && command -v tinyproxy >/dev/null 2>&1 \
		&& command -v openssl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium, chromium-driver, tinyproxy and openssl with apt-get (browser, proxy and TLS tests)…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver tinyproxy openssl >/dev/null; \
	else \
		echo "The tests need Chromium, tinyproxy and openssl. Run: sudo apt-get install -y chromium chromium-driver tinyproxy openssl"; exit 1; \
	fi
	@if python3 -c 'import standardwebhooks, svix, selenium, schemathesis, cryptography' >/dev/null 2>&1; then :; \
	elif python3 -m pip --version >/dev/null 2>&1; then \
		echo "Installing standardwebhooks, svix, selenium, schemathesis and cryptography from PyPI (interop, browser and fuzz tests)…"; \
		python3 -m pip install --quiet --disable-pip-version-check standardwebhooks svix selenium schemathesis==4.32.5 cryptography 2>/dev/null \
			|| python3 -m pip install --quiet --disable-pip-version-check --break-system-packages standardwebhooks svix selenium schemathesis==4.32.5 cryptography; \
	else \
		echo "The interop and browser tests need Python 3 with pip. Run: sudo apt-get install -y python3-pip"; exit 1; \
	fi

run: deps
	swift run tern serve

test: deps testdeps
	swift test

build: deps
	swift build

# The code as `swift format` (in the toolchain) leaves it, with the repository's .swift-format; CI fails otherwise.
lint:
	swift format lint --strict --recursive --parallel Sources Tests Package.swift

format:
	swift format format --in-place --recursive --parallel Sources Tests Package.swift

# The release build of docs/operations.md: Swift's runtime and Foundation linked in, relocations packed, and each
# function in its own section, so that the linker can lay out Sources/tern/Link/hot-text.ld's functions together.
RELEASE_BUILD = swift build -c release --static-swift-stdlib --product tern -Xswiftc -Xfrontend -Xswiftc -function-sections \
	-Xcc -ffunction-sections -Xlinker -z -Xlinker pack-relative-relocs

# The benchmark of docs/benchmarks.md (the release build as docs/operations.md builds it, Swift's runtime and Foundation
# linked in; add PG=postgres://… to measure PostgreSQL too).
bench: deps
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing wrk with apt-get (the benchmark's load generator)…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else \
		echo "wrk is not installed (sudo apt-get install -y wrk): measuring with the built-in client only."; \
	fi
	$(RELEASE_BUILD)
	.build/release/tern bench $$(command -v wrk >/dev/null 2>&1 && echo --wrk) $(if $(PG),--postgres $(PG))

# Writes Sources/tern/Link/hot-text.ld anew from the functions the release server runs under Valgrind's callgrind
# (idle, then publishing; add PG=postgres://… of an empty database to run on PostgreSQL too). Minutes, not seconds.
hot-text: deps
	@command -v valgrind >/dev/null 2>&1 || { [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 \
		&& echo "Installing valgrind with apt-get…" && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } \
		|| { echo "make hot-text needs Valgrind: sudo apt-get install -y valgrind"; exit 1; }
	$(RELEASE_BUILD) -Xlinker -Map=.build/tern.map
	python3 Sources/tern/Link/hot_text.py --binary .build/release/tern --map .build/tern.map --out Sources/tern/Link/hot-text.ld \
		$(if $(PG),--postgres $(PG))
