# client.mk -- the public C client (include/countersign.h): its library, its
# system test program and the examples. A GNU make fragment included by the
# top-level Makefile after its own rules; it uses that file's CC, ALL_CFLAGS,
# ALL_LDFLAGS, BUILD, Q, obj and its $(BUILD)/obj/%.o pattern rule.
#
#   make client              $(BUILD)/libcountersign-client.a, the examples,
#                            $(BUILD)/tests/test_client
#   make client-check        the public header compiles alone (C11, pedantic, C++)
#
# Users link: -lcountersign-client $(pkg-config --libs libcurl json-c rdkafka libcrypto) -lpthread -lm
# The archive holds client/*.o and lib/cs_mem.o (the aborting allocator), nothing
# else of lib/. The system test is tests/integration/test_sdk_c.py.

ifndef CLIENT_MK_INCLUDED
CLIENT_MK_INCLUDED := 1

CLIENT_SRCS := client/countersign.c client/approval.c client/batch.c client/request.c \
	client/base64.c client/producer.c
CLIENT_LIB := $(BUILD)/libcountersign-client.a
CLIENT_LIBS := $(shell pkg-config --libs libcurl json-c rdkafka libcrypto 2>/dev/null) -lpthread -lm
CLIENT_EXAMPLES := $(BUILD)/examples/submit_and_wait $(BUILD)/examples/produce_request \
	$(BUILD)/examples/submit_batch
# Kept (not intermediate), so a second make has nothing to do.
.SECONDARY: $(call obj,examples/submit_and_wait.c examples/produce_request.c \
	examples/submit_batch.c client/test_client.c client/test_batch.c \
	client/test_failures.c client/test_producer.c)
CLIENT_TEST := $(BUILD)/tests/test_client

.PHONY: client client-check

client: $(CLIENT_LIB) $(CLIENT_EXAMPLES) $(CLIENT_TEST) client-check

$(CLIENT_LIB): $(call obj,$(CLIENT_SRCS)) $(BUILD)/obj/lib/cs_mem.o
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(CLIENT_LIB)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(CLIENT_LIB) $(CLIENT_LIBS)

$(CLIENT_TEST): $(BUILD)/obj/client/test_client.o $(BUILD)/obj/client/test_batch.o \
		$(BUILD)/obj/client/test_failures.o $(BUILD)/obj/client/test_producer.o $(CLIENT_LIB)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(CLIENT_LIB) $(CLIENT_LIBS)

# The public header needs nothing but the C standard library, in C and C++.
client-check: $(BUILD)/obj/client/header-c.ok $(BUILD)/obj/client/header-cxx.ok

$(BUILD)/obj/client/header-c.ok: include/countersign.h
	@mkdir -p $(@D)
	$(Q)echo '#include "countersign.h"' | $(CC) -std=c11 -pedantic-errors -Wall -Wextra -Werror \
	  -Iinclude -x c -fsyntax-only - && touch $@

$(BUILD)/obj/client/header-cxx.ok: include/countersign.h
	@mkdir -p $(@D)
	$(Q)if command -v c++ >/dev/null; then echo '#include "countersign.h"' | c++ -std=c++11 \
	  -pedantic-errors -Wall -Wextra -Werror -Iinclude -x c++ -fsyntax-only -; fi && touch $@

endif
