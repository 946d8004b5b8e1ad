// Sanitizer defaults of the cuda_host test binary. LibTorch keeps caches alive until exit,
// which LeakSanitizer would report as leaks of ours; every other ASan and UBSan check
// stays on, and UBSan stops at the first error with a stack.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
