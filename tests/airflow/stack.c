/*
 * stack.c - the running stack the Airflow tests drive (test_airflow.py
 * starts it): marketsim and the three services on free ports with a
 * database and topic prefix of their own (h_stack_start), the services
 * requiring an API token for mutating calls, as a deployment would.
 *
 * It writes where everything is as JSON to argv[1] (the services' ports,
 * the token, the database's connection string, the logs' folder), prints
 * "ready" and waits: end of input, "quit" or SIGTERM stops everything and
 * drops the database. The test makes its jobs, runs and fault rules itself
 * through the API. The exit status is 0 when every service stopped cleanly.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define API_KEY   "airflow-Key-7d41b3"
#define API_TOKEN "airflow-Token-e2a95c"
#define SEED      37

static struct h_stack stack;
static volatile sig_atomic_t stop_asked;

static void on_signal(int sig)
{
    (void)sig;
    stop_asked = 1;
}

/* Writes the stack's facts to path (through a temporary file); 0 on success. */
static int write_facts(const char *path)
{
    static const char *const names[H_NPROCS] = {"marketsim", "extract", "transform", "aggregate"};
    cJSON *f = cJSON_CreateObject();
    cJSON *ports = cJSON_AddObjectToObject(f, "ports");
    char tmp[1100];
    char *text;
    FILE *fp;
    int ok;

    for (int i = 0; i < H_NPROCS; i++)
        cJSON_AddNumberToObject(ports, names[i], stack.procs[i].port);
    cJSON_AddStringToObject(f, "token", API_TOKEN);
    cJSON_AddStringToObject(f, "dsn", stack.dsn);
    cJSON_AddStringToObject(f, "dir", stack.dir);
    text = cJSON_Print(f);
    cJSON_Delete(f);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fp = fopen(tmp, "w");
    ok = fp && text && fputs(text, fp) >= 0;
    if (fp)
        ok = fclose(fp) == 0 && ok;
    cJSON_free(text);
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "stack: could not write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const env[] = {"TICKFLOW_API_TOKEN=" API_TOKEN, NULL};
    struct sigaction sa;
    char line[128];
    int unclean, ok;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FACTS.json\n", argv[0]);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: the read on stdin returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ok = h_stack_start(&stack, "airflow", API_KEY, SEED, env) == 0 && write_facts(argv[1]) == 0;
    if (ok) {
        printf("ready\n");
        fflush(stdout);
        while (!stop_asked && fgets(line, sizeof(line), stdin)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (strcmp(line, "quit") == 0)
                break;
            printf("unknown command: %s\n", line);
            fflush(stdout);
        }
    } else {
        printf("failed: the stack could not be set up (see above%s%s)\n",
               stack.dir[0] ? " and the logs in " : "", stack.dir);
        fflush(stdout);
    }
    unclean = h_stack_stop(&stack);
    if (unclean)
        printf("failed: %d service(s) did not stop cleanly\n", unclean);
    return ok && unclean == 0 ? 0 : 1;
}
