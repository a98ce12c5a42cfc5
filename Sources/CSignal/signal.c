/* signal.c: see fclf_signal.h. Only async-signal-safe calls (write, unlink, _exit) in the handler. */
#include "fclf_signal.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupts = 0;
static atomic_int installed = 0;
/* The register of the write in progress: 0 free, 1 its owner is writing the path, 2 it holds the path. Writes
 * can run on several threads at once (the library's atomic writes, tests training side by side); the first to
 * find the register free owns it until its end, and the others leave it alone (their temporary files are not
 * removed by a second Ctrl-C, as after SIGKILL). Lock-free atomics, so the handler may read them. */
static atomic_int temporary_state = 0;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGINT handler reads the register: it must be lock-free");
static _Thread_local int owns_temporary = 0;
static char temporary[4096];

static void on_sigint(int signal_number) {
    (void)signal_number;
    if (interrupts > 0) {
        if (atomic_load(&temporary_state) == 2) unlink(temporary);
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
    atomic_store(&installed, 1);
    return 0;
}

int fclf_sigint_count(void) { return interrupts; }

void fclf_temporary_file_begin(const char *path) {
    if (!atomic_load(&installed)) return;
    size_t n = strlen(path);
    if (n >= sizeof temporary) return; /* too long to remember: stays unset */
    if (owns_temporary) {
        atomic_store(&temporary_state, 1);
    } else {
        int free_state = 0;
        if (!atomic_compare_exchange_strong(&temporary_state, &free_state, 1)) return; /* another thread's write */
        owns_temporary = 1;
    }
    memcpy(temporary, path, n + 1);
    atomic_store(&temporary_state, 2);
}

void fclf_temporary_file_end(void) {
    if (!owns_temporary) return;
    owns_temporary = 0;
    atomic_store(&temporary_state, 0);
}
