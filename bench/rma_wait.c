/* How long does a one-sided reader wait for a snapshot while its target is busy?
 *
 * Two ranks. Rank 1 (the target, a group leader) exposes a window of SIZE bytes, a snapshot (by
 * default the size of the cnn's on Fashion-MNIST, 1.69 MB), and in each trial computes for BUSY
 * ms: either without any MPI call (--target none: an evaluation or a checkpoint write) or calling
 * MPI_Iprobe once every POLL ms (--target poll: codistill's once-per-step poke of a one-rank
 * group). Rank 0 (the reader) starts reading DELAY ms into the trial, so the target is surely
 * busy, and records (columns wait_* and in_mpi_*):
 *
 *   blocking     MPI_Win_lock(SHARED) / MPI_Get / MPI_Win_unlock, as Sources/Cluster/PeerWindow.swift
 *                does today: the wait is the time spent in those calls.
 *   nonblocking  MPI_Win_lock_all(MPI_MODE_NOCHECK) once per run; per read MPI_Rget, then the reader
 *                computes in 1 ms slices and polls MPI_Test between them: "complete" is the time
 *                until the request completes, "in MPI" the time the reader spent inside MPI calls.
 *
 * Both ranks meet in MPI_Barrier at the end of each trial (where the target progresses anyway),
 * so a read the target never serves completes there. Output: one line per (scheme, busy time) with
 * the median and maximum over the trials, in ms; WRONG BYTES if what was read is not the target's.
 *
 *   mpirun -np 2 ... rma_wait [--size BYTES] [--busy MS,MS,...] [--trials N] [--delay MS]
 *                             [--target none|poll] [--poll MS] [--threads single|multiple] [--label TEXT]
 *
 * --threads multiple initialises MPI with MPI_THREAD_MULTIPLE (as a progress thread needs).
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Computes until `ms` have passed, with no MPI call. */
static volatile double sink;
static void compute(double ms) {
    double end = now_ms() + ms, x = 1.0;
    while (now_ms() < end)
        for (int i = 0; i < 2000; i++) x = x * 1.0000001 + 1e-9;
    sink = x;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
static double maximum(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

int main(int argc, char **argv) {
    long size = 1688136; /* the cnn on 28x28 inputs: 422,026 floats and a 32-byte header */
    int trials = 5, poll_ms = 10, thread_level = MPI_THREAD_SINGLE;
    double delay_ms = 5;
    const char *busy_list = "0,100,400", *target_mode = "none", *label = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) size = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--busy")) busy_list = argv[i + 1];
        else if (!strcmp(argv[i], "--trials")) trials = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--delay")) delay_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--target")) target_mode = argv[i + 1];
        else if (!strcmp(argv[i], "--poll")) poll_ms = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--label")) label = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) thread_level = strcmp(argv[i + 1], "multiple") ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE;
        else { fprintf(stderr, "rma_wait: unknown option %s\n", argv[i]); return 2; }
    }
    int provided;
    MPI_Init_thread(&argc, &argv, thread_level, &provided);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (ranks != 2) {
        if (rank == 0) fprintf(stderr, "rma_wait: run with exactly 2 ranks\n");
        MPI_Finalize();
        return 2;
    }
    char host[MPI_MAX_PROCESSOR_NAME];
    int len;
    MPI_Get_processor_name(host, &len);
    char hosts[2][MPI_MAX_PROCESSOR_NAME];
    MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);

    unsigned char *base = NULL;
    MPI_Win win;
    MPI_Win_allocate(rank == 1 ? size : 0, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    if (rank == 1)
        for (long i = 0; i < size; i++) base[i] = (unsigned char)(i * 7 + 3);
    unsigned char *staging = malloc(size);
    int poll = !strcmp(target_mode, "poll");
    if (rank == 0) {
        printf("# reader on %s, target on %s, snapshot %ld bytes, %d trials, each read starts %.0f ms into the "
               "target's busy time; the target ", hosts[0], hosts[1], size, trials, delay_ms);
        if (poll) printf("calls MPI_Iprobe every %d ms while busy\n", poll_ms);
        else printf("makes no MPI call while busy\n");
        printf("%-12s %-8s %8s %12s %10s %14s %12s %s\n", "scheme", "target", "busy_ms", "wait_median", "wait_max",
               "in_mpi_median", "in_mpi_max", label);
    }

    for (int scheme = 0; scheme < 2; scheme++) {
        if (scheme == 1) MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
        char list[256];
        snprintf(list, sizeof list, "%s", busy_list);
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
            double busy = atof(tok);
            double wait[trials], inmpi[trials];
            int bad = 0;
            for (int t = 0; t < trials; t++) {
                MPI_Barrier(MPI_COMM_WORLD);
                if (rank == 1) {
                    if (poll) {
                        double end = now_ms() + busy;
                        while (now_ms() < end) {
                            compute(poll_ms);
                            int flag;
                            MPI_Iprobe(MPI_ANY_SOURCE, 12345, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
                        }
                    } else {
                        compute(busy);
                    }
                } else {
                    compute(delay_ms);
                    memset(staging, 0, size);
                    double t0 = now_ms();
                    if (scheme == 0) {
                        MPI_Win_lock(MPI_LOCK_SHARED, 1, 0, win);
                        MPI_Get(staging, (int)size, MPI_BYTE, 1, 0, (int)size, MPI_BYTE, win);
                        MPI_Win_unlock(1, win);
                        wait[t] = inmpi[t] = now_ms() - t0;
                    } else {
                        MPI_Request req;
                        double in = 0, c0 = now_ms();
                        MPI_Rget(staging, (int)size, MPI_BYTE, 1, 0, (int)size, MPI_BYTE, win, &req);
                        in += now_ms() - c0;
                        int done = 0;
                        for (;;) {
                            c0 = now_ms();
                            MPI_Test(&req, &done, MPI_STATUS_IGNORE);
                            in += now_ms() - c0;
                            if (done) break;
                            compute(1); /* the reader's own training step goes on */
                        }
                        wait[t] = now_ms() - t0;
                        inmpi[t] = in;
                    }
                    for (long i = 0; i < size; i += 4099)
                        if (staging[i] != (unsigned char)(i * 7 + 3)) { bad = 1; break; }
                }
                MPI_Barrier(MPI_COMM_WORLD);
            }
            if (rank == 0) {
                double wmax = maximum(wait, trials), imax = maximum(inmpi, trials);
                double wmed = median(wait, trials), imed = median(inmpi, trials);
                printf("%-12s %-8s %8.0f %12.1f %10.1f %14.1f %12.1f %s%s\n", scheme ? "nonblocking" : "blocking",
                       target_mode, busy, wmed, wmax, imed, imax, label, bad ? " WRONG BYTES" : "");
                fflush(stdout);
            }
        }
        if (scheme == 1) MPI_Win_unlock_all(win);
    }
    MPI_Win_free(&win);
    free(staging);
    MPI_Finalize();
    return 0;
}
