/* bridge/names.c - identifier rules for spec names. */
#include "names.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "spec.h"

const char *const bridge_function_suffixes[] = {
    "",        "_future", "_result", "_aio",  "_cb", "_args_t",
    "_args_s", "_impl",   "_return", "_fail", NULL,
};

const char *const bridge_stream_suffixes[] = {
    "_open",     "_next",     "_next_aio", "_next_cb",   "_error", "_close",
    "_stream_t", "_stream_s", "_args_t",   "_args_s",    "_impl",  "_yield",
    "_end",      "_fail",     "_room",     "_on_demand", NULL,
};

const char *const bridge_module_names[] = {
    "synchronizer",     "use_synchronizer",  "strerror",          "errno_t",
    "errno_e",          "bytes_t",           "bytes_s",           "bool_array_t",
    "bool_array_s",     "bool_array_free",   "int_array_t",       "int_array_s",
    "int_array_free",   "uint_array_t",      "uint_array_s",      "uint_array_free",
    "double_array_t",   "double_array_s",    "double_array_free", "string_array_t",
    "string_array_s",   "string_array_free", "bytes_array_t",     "bytes_array_s",
    "bytes_array_free", "json_array_t",      "json_array_s",      "json_array_free",
    "ptr_array_t",      "ptr_array_s",       "ptr_array_free",    NULL,
};

const char *const bridge_object_suffixes[] = {
    "_t",          "_s",          "_new",       "_free",    "_ref",
    "_new_args_t", "_new_args_s", "_construct", "_destroy", NULL,
};
const char *const bridge_object_lifecycle[] = {"open", "close", NULL};

static const char *const c_keywords[] = {
    "auto",    "break",  "case",     "char",   "const",    "continue", "default",
    "do",      "double", "else",     "enum",   "extern",   "float",    "for",
    "goto",    "if",     "inline",   "int",    "long",     "register", "restrict",
    "return",  "short",  "signed",   "sizeof", "static",   "struct",   "switch",
    "typedef", "union",  "unsigned", "void",   "volatile", "while",    NULL,
};

/* Argument names appear bare in MOD.h, which C++ code may include. */
static const char *const cxx_keywords[] = {
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "bitand",
    "bitor",
    "bool",
    "catch",
    "char8_t",
    "char16_t",
    "char32_t",
    "class",
    "compl",
    "concept",
    "consteval",
    "constexpr",
    "constinit",
    "const_cast",
    "co_await",
    "co_return",
    "co_yield",
    "decltype",
    "delete",
    "dynamic_cast",
    "explicit",
    "export",
    "false",
    "friend",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "requires",
    "static_assert",
    "static_cast",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "xor",
    "xor_eq",
    NULL,
};

/* Object-like macros and global variables of the headers generated code includes
 * (stdbool, stddef, errno, stdio via uv.h, time, signal, unistd): a parameter with
 * one of these names would be rewritten or would shadow a global. */
static const char *const header_names[] = {
    "NULL",         "assert",   "complex",  "daylight", "environ",  "errno",  "imaginary",
    "noreturn",     "offsetof", "optarg",   "opterr",   "optind",   "optopt", "sa_handler",
    "sa_sigaction", "signgam",  "st_atime", "st_ctime", "st_mtime", "stderr", "stdin",
    "stdout",       "timezone", "tzname",   NULL,
};

/* The parameters the generated wrappers add to an operation's own (they have no
 * locals, so nothing else can collide). */
static const char *const wrapper_names[] = {
    "aio_cb", "aio_data", "aio_host", "err", "out", "self", NULL,
};

static bool in_list(const char *const *list, const char *name) {
  for (; *list; list++)
    if (strcmp(*list, name) == 0)
      return true;
  return false;
}

/* Checks the characters of an identifier. */
static int check_characters(const char *name, bool lower_snake, bridge_buf_t *why) {
  const char *p;

  if (!isalpha((unsigned char)name[0]) || (unsigned char)name[0] >= 0x80) {
    bridge_buf_add(why, "must start with a letter");
    return -1;
  }
  for (p = name; *p; p++) {
    unsigned char c = (unsigned char)*p;
    bool ok = lower_snake ? (islower(c) || isdigit(c) || c == '_') : (isalnum(c) || c == '_');
    if (!ok || c >= 0x80) {
      bridge_buf_addf(why, "character %zu ", (size_t)(p - name) + 1);
      bridge_buf_add(why, lower_snake ? "is not one of a-z, 0-9 or \"_\""
                                      : "is not one of A-Z, a-z, 0-9 or \"_\"");
      return -1;
    }
  }
  return 0;
}

int bridge_name_check(const char *name, bool lower_snake, bridge_buf_t *why) {
  size_t len = strlen(name);

  if (len == 0) {
    bridge_buf_add(why, "is empty");
    return -1;
  }
  if (len > BRIDGE_NAME_MAX) {
    bridge_buf_addf(why, "is longer than %d characters", BRIDGE_NAME_MAX);
    return -1;
  }
  if (check_characters(name, lower_snake, why) != 0)
    return -1;
  if (strstr(name, "__") != NULL) {
    bridge_buf_add(why, "contains \"__\" (reserved by C++, and by bridge for its "
                        "internal names)");
    return -1;
  }
  if (name[len - 1] == '_') {
    bridge_buf_add(why, "ends with \"_\"");
    return -1;
  }
  if (in_list(c_keywords, name)) {
    bridge_buf_add(why, "is a C keyword");
    return -1;
  }
  return 0;
}

/* True if `s` starts with `prefix` followed by "_", ignoring case. */
static bool has_prefix(const char *s, const char *prefix) {
  size_t n = strlen(prefix);
  return strncasecmp(s, prefix, n) == 0 && s[n] == '_';
}

int bridge_param_check(const char *param, const char *module, bridge_buf_t *why) {
  size_t len = strlen(param);

  if (in_list(cxx_keywords, param)) {
    bridge_buf_add(why, "is a C++ keyword (MOD.h must compile as C++)");
    return -1;
  }
  if (in_list(header_names, param)) {
    bridge_buf_add(why, "is a macro or global of a standard header");
    return -1;
  }
  if (in_list(wrapper_names, param)) {
    bridge_buf_add(why, "is a parameter of the generated wrappers (reserved: out, err, "
                        "aio_host, aio_cb, aio_data, self)");
    return -1;
  }
  if (len >= 2 && strcmp(param + len - 2, "_t") == 0) {
    bridge_buf_add(why, "ends with \"_t\" (reserved by POSIX for type names)");
    return -1;
  }
  if (has_prefix(param, "synchro") || has_prefix(param, module)) {
    bridge_buf_addf(why,
                    "starts with \"synchro_\" or \"%s_\", which would hide a "
                    "function or type the wrappers use",
                    module);
    return -1;
  }
  return 0;
}
