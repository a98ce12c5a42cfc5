/* signal.c: see fclf_signal.h. Only async-signal-safe calls (write, unlink, _exit) in the handler. */
#include "fclf_signal.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupts = 0;
static volatile sig_atomic_t installed = 0;
static volatile sig_atomic_t temporary_set = 0;
static char temporary[4096];

static void on_sigint(int signal_number) {
    (void)signal_number;
    if (interrupts > 0) {
        if (temporary_set) unlink(temporary);
        static const char message[] = "\nfclf-train: interrupted again: exiting now\n";
        ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
        (void)ignored;
        _exit(130);
    }
    interrupts = 1;
}

int fclf_sigint_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &action, NULL) != 0) return -1;
    installed = 1;
    return 0;
}

int fclf_sigint_count(void) { return interrupts; }

void fclf_temporary_file_begin(const char *path) {
    if (!installed) return;
    temporary_set = 0;
    atomic_signal_fence(memory_order_seq_cst);
    size_t n = strlen(path);
    if (n >= sizeof temporary) return;  /* too long to remember: stays unset */
    memcpy(temporary, path, n + 1);
    atomic_signal_fence(memory_order_seq_cst);
    temporary_set = 1;
}

void fclf_temporary_file_end(void) {
    temporary_set = 0;
    atomic_signal_fence(memory_order_seq_cst);
}
