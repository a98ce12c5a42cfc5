/* fclf_signal.h: Ctrl-C for fclf-train. The handler only counts (a volatile sig_atomic_t): the first SIGINT
 * asks the trainer to stop after its current batch; the second exits at once with status 130, removing the
 * temporary file an atomic write has open at that moment (unlink and _exit are async-signal-safe). */
#ifndef FCLF_SIGNAL_H
#define FCLF_SIGNAL_H

/* Installs the SIGINT handler (sigaction, SA_RESTART). Returns 0, or -1 with errno set. */
int fclf_sigint_install(void);

/* SIGINTs received since fclf_sigint_install (0 before it). */
int fclf_sigint_count(void);

/* An atomic write's temporary file, for the second SIGINT to remove: registered before it is created,
 * cleared once it is renamed or removed. A no-op unless the handler is installed. Safe from any thread: while
 * one thread's write holds the register, writes on other threads are not registered. */
void fclf_temporary_file_begin(const char *path);
void fclf_temporary_file_end(void);

#endif
