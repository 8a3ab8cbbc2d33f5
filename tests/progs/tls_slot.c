/*
 * libtls_slot.so - a library that only owns thread-local storage.
 *
 * The tracer's preload library has thread-local variables, which gives
 * every traced process one more TLS module; glibc sizes each new thread's
 * TLS vector (a calloc that stays live while the thread's stack is cached)
 * by the number of modules.  The tests preload this stand-in into the
 * valgrind runs of the same programs, so that libc makes the very same
 * allocations there as under the tracer.
 */
__thread int tls_slot;
