# Builds Debian's node-llhttp C sources (/usr/share/llhttp) into a static library.
# Nothing of llhttp is copied into this repository; see third_party/README.md.
LLHTTP_SRC_DIR ?= /usr/share/llhttp
LLHTTP_INC_DIR ?= /usr/share/include/llhttp
LLHTTP_LIB := $(BUILD)/third_party/libllhttp.a
LLHTTP_OBJS := $(patsubst %,$(BUILD)/third_party/llhttp/%.o,llhttp api http)

$(BUILD)/third_party/llhttp/%.o: $(LLHTTP_SRC_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g -fPIC $(SAN_FLAGS) -I$(LLHTTP_INC_DIR) -c $< -o $@

$(LLHTTP_LIB): $(LLHTTP_OBJS)
	$(AR) rcs $@ $^
