# Builds Debian's node-llhttp C sources (/usr/share/llhttp) into a static library.
# Nothing of llhttp is copied into this repository; see third_party/README.md.
#
# The sources are not a prerequisite make must find when it reads this file:
# on a bare machine they appear only once $(DEPS_STAMP) has installed
# node-llhttp, so the objects depend on the stamp and name their source in
# the recipe (a pattern rule on /usr/share/llhttp/%.c would be rejected
# before the install could run: "No rule to make target").
LLHTTP_SRC_DIR ?= /usr/share/llhttp
LLHTTP_INC_DIR ?= /usr/share/include/llhttp
LLHTTP_LIB := $(BUILD)/third_party/libllhttp.a
LLHTTP_NAMES := llhttp api http
LLHTTP_OBJS := $(patsubst %,$(BUILD)/third_party/llhttp/%.o,$(LLHTTP_NAMES))

$(LLHTTP_OBJS): $(BUILD)/third_party/llhttp/%.o: $(DEPS_STAMP) \
                $(wildcard $(LLHTTP_SRC_DIR)/*.c $(LLHTTP_INC_DIR)/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -fPIC $(SAN_FLAGS) -I$(LLHTTP_INC_DIR) -c $(LLHTTP_SRC_DIR)/$*.c -o $@

$(LLHTTP_LIB): $(LLHTTP_OBJS)
	$(AR) rcs $@ $^
