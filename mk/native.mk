# mk/native.mk — the native tier links LLVM 19 (Debian's llvm-19-dev, C API).
#
# Only the native tier's files (src/engine/native_*.c) include LLVM's
# headers; every binary links libLLVM (a shared library, loaded
# lazily by the dynamic linker, so start-up barely notices it).

LLVM_CONFIG ?= /usr/lib/llvm-19/bin/llvm-config
LLVM_INCLUDE := /usr/lib/llvm-19/include
LLVM_LIBDIR := /usr/lib/llvm-19/lib
LLVM_CFLAGS := -isystem $(LLVM_INCLUDE)
LLVM_LIBS := -L$(LLVM_LIBDIR) -lLLVM-19

CFLAGS += $(LLVM_CFLAGS)
LIBS += $(LLVM_LIBS) -lcrypto

# The daemon test suites run once per tier (tests/lib/tier_wrapper.sh):
# interp (serve --tier interp) and native (every deploy waits for its
# native code). DAEMON_TIERS=interp (or native) runs one.
DAEMON_TIERS ?= interp native
TIER_WRAPPER := $(abspath tests/lib/tier_wrapper.sh)
