/*
 * kafka-mock: the local stack's Kafka-protocol broker.
 *
 * A thin process around librdkafka's mock cluster (rdkafka_mock.h). No Kafka
 * broker usable by kafkajs is packaged for Debian bookworm or npm, and the
 * mock speaks enough of the protocol for producers, consumer groups, offset
 * commits and fault injection. Not supported by the mock: CreateTopics and
 * other admin APIs (topics come from --topic or the control port), real
 * transactions, persistence across restarts.
 *
 * Contract:
 *   - Broker i (ids 1..N) listens on 127.0.0.1:(port-base + i - 1). The mock
 *     itself only binds 127.0.0.1:0, so this file interposes bind() while the
 *     cluster is being created (see bind() below).
 *   - Once every broker listens and the --topic topics exist, one line
 *     "READY <bootstrap.servers>" is printed on stdout.
 *   - A line protocol on 127.0.0.1:<control-port> (one command per line,
 *     one reply line per command, "ok[ <value>]" or "error <reason>"):
 *         ping                          -> ok
 *         bootstrap                     -> ok <bootstrap.servers>
 *         down <brokerId>               -> ok   (listener closed, connections dropped)
 *         up <brokerId>                 -> ok   (same port again)
 *         rtt <brokerId> <ms>           -> ok   (added latency per response)
 *         create-topic <name> <parts>   -> ok | error TOPIC_ALREADY_EXISTS ...
 *   - SIGTERM/SIGINT: the control socket closes, the cluster is destroyed, exit 0.
 *   - State lives in memory only: a restart starts empty.
 *
 * Usage: kafka-mock [--brokers N] [--port-base P] [--control-port C]
 *                   [--topic name:partitions]... [--debug]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "rdkafka.h"
#include "rdkafka_mock.h"

#define MAX_BROKERS 16
#define MAX_TOPICS 256
#define MAX_CLIENTS 32
/* A command line is a few words; anything longer is a misbehaving client. */
#define LINE_MAX_LEN 512
/* The mock caps replication at the broker count, as Kafka would refuse more. */
#define MAX_REPLICATION 3
/* kafkajs 2.2.4 cannot parse the mock's LeaveGroup v3 reply
 * ("The value of "offset" is out of range"), so the broker advertises v0..v1. */
#define API_KEY_LEAVE_GROUP 13
#define LEAVE_GROUP_MAX_VERSION 1

static void logf_(const char *fmt, ...) {
        char ts[16];
        time_t now = time(NULL);
        struct tm tm;
        va_list ap;
        localtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        fprintf(stderr, "[%s] kafka-mock: ", ts);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/*
 * bind() interposition.
 *
 * librdkafka 2.15 has no option for the mock's listen port
 * (rd_kafka_mock_broker_set_host_port only changes the advertised address),
 * and the local stack needs a fixed, documented port. Because this definition
 * lives in the executable, librdkafka's calls to bind() resolve to it (static
 * or dynamic linking alike). It only rewrites while `rewrite_active` is set,
 * which is exactly the span of rd_kafka_mock_cluster_new() on the main thread;
 * there the mock creates brokers 1..N in order, each with one loopback bind
 * to port 0, so the k-th such bind is broker k+1. Every other bind (the
 * control socket, and the mock re-binding a broker's already fixed port when
 * it is set down) passes through unchanged.
 */
static volatile int rewrite_active;
static int rewrite_next_port;
static int rewrite_count;

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
        if (rewrite_active && addr && addr->sa_family == AF_INET &&
            len >= (socklen_t)sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
                if (in->sin_port == 0 &&
                    in->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
                        struct sockaddr_in fixed = *in;
                        fixed.sin_port = htons((uint16_t)(rewrite_next_port++));
                        rewrite_count++;
                        return (int)syscall(SYS_bind, fd,
                                            (struct sockaddr *)&fixed,
                                            sizeof(fixed));
                }
        }
        return (int)syscall(SYS_bind, fd, addr, len);
}

struct topic_arg {
        const char *name;
        int partitions;
};

struct options {
        int brokers;
        int port_base;
        int control_port;
        int debug;
        int topic_cnt;
        struct topic_arg topics[MAX_TOPICS];
};

static void usage(FILE *out) {
        fprintf(out,
                "usage: kafka-mock [--brokers N] [--port-base P] "
                "[--control-port C] [--topic name:partitions]... [--debug]\n"
                "  broker i (1..N) listens on 127.0.0.1:P+i-1 "
                "(defaults: N=1, P=$KAFKA_PORT or 29092)\n"
                "  control protocol on 127.0.0.1:C "
                "(default $KAFKA_CONTROL_PORT or 29093); C must lie outside "
                "P..P+N-1\n");
}

static int parse_int(const char *s, long min, long max, int *out) {
        char *end;
        long v;
        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = (int)v;
        return 0;
}

/* Kafka topic names: [a-zA-Z0-9._-], 1..249 characters. Checked here so a
 * bad name is a clear error instead of a topic no client can use. */
static int valid_topic_name(const char *s) {
        size_t n = strlen(s), i;
        if (n == 0 || n > 249 || !strcmp(s, ".") || !strcmp(s, ".."))
                return 0;
        for (i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                      c == '-'))
                        return 0;
        }
        return 1;
}

static int env_port(const char *name, int dflt) {
        int v;
        const char *s = getenv(name);
        if (s && *s) {
                if (parse_int(s, 1, 65535, &v) == 0)
                        return v;
                logf_("ignoring invalid %s=%s", name, s);
        }
        return dflt;
}

static int parse_options(int argc, char **argv, struct options *o) {
        int i;
        o->brokers      = 1;
        o->port_base    = env_port("KAFKA_PORT", 29092);
        o->control_port = env_port("KAFKA_CONTROL_PORT", 29093);
        o->debug        = 0;
        o->topic_cnt    = 0;

        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
                        usage(stdout);
                        exit(0);
                } else if (!strcmp(a, "--debug")) {
                        o->debug = 1;
                } else if (!strcmp(a, "--brokers")) {
                        if (parse_int(v, 1, MAX_BROKERS, &o->brokers))
                                return logf_("--brokers needs 1..%d",
                                             MAX_BROKERS),
                                       -1;
                        i++;
                } else if (!strcmp(a, "--port-base")) {
                        if (parse_int(v, 1, 65535, &o->port_base))
                                return logf_("--port-base needs a port"), -1;
                        i++;
                } else if (!strcmp(a, "--control-port")) {
                        if (parse_int(v, 1, 65535, &o->control_port))
                                return logf_("--control-port needs a port"),
                                       -1;
                        i++;
                } else if (!strcmp(a, "--topic")) {
                        char *colon;
                        struct topic_arg *t;
                        if (!v || !(colon = strrchr(v, ':')))
                                return logf_("--topic needs name:partitions"),
                                       -1;
                        if (o->topic_cnt == MAX_TOPICS)
                                return logf_("at most %d --topic", MAX_TOPICS),
                                       -1;
                        t = &o->topics[o->topic_cnt];
                        /* argv is writable: split in place. */
                        *colon  = '\0';
                        t->name = v;
                        if (!valid_topic_name(t->name) ||
                            parse_int(colon + 1, 1, 10000, &t->partitions))
                                return logf_("invalid --topic %s:%s", v,
                                             colon + 1),
                                       -1;
                        o->topic_cnt++;
                        i++;
                } else {
                        logf_("unknown argument: %s", a);
                        usage(stderr);
                        return -1;
                }
        }

        if (o->port_base + o->brokers - 1 > 65535)
                return logf_("port range %d..%d exceeds 65535", o->port_base,
                             o->port_base + o->brokers - 1),
                       -1;
        if (o->control_port >= o->port_base &&
            o->control_port <= o->port_base + o->brokers - 1)
                return logf_("control port %d lies in the broker port range "
                             "%d..%d; choose another --control-port or "
                             "--port-base",
                             o->control_port, o->port_base,
                             o->port_base + o->brokers - 1),
                       -1;
        return 0;
}

static int replication_for(int brokers) {
        return brokers < MAX_REPLICATION ? brokers : MAX_REPLICATION;
}

/* ---- control protocol ---------------------------------------------------- */

struct client {
        int fd;
        size_t len;
        char buf[LINE_MAX_LEN];
};

static rd_kafka_mock_cluster_t *mcluster;
static const char *bootstraps;
static int broker_cnt;

/* Always returns 0, so handlers can `return reply(...)`. */
static int reply(int fd, const char *fmt, ...) {
        char out[LINE_MAX_LEN + 64];
        va_list ap;
        int n;
        size_t off = 0;
        va_start(ap, fmt);
        n = vsnprintf(out, sizeof(out) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return 0;
        if ((size_t)n > sizeof(out) - 2)
                n = (int)sizeof(out) - 2;
        out[n++] = '\n';
        /* Replies are tiny; a blocking-until-written loop is fine, and a
         * client that vanished just gets EPIPE (SIGPIPE is ignored). */
        while (off < (size_t)n) {
                ssize_t w = send(fd, out + off, (size_t)n - off, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return 0;
                }
                off += (size_t)w;
        }
        return 0;
}

static int reply_err(int fd, rd_kafka_resp_err_t err) {
        if (err)
                return reply(fd, "error %s: %s", rd_kafka_err2name(err),
                             rd_kafka_err2str(err));
        return reply(fd, "ok");
}

static int parse_broker_id(const char *s, int32_t *id) {
        int v;
        /* -1 is librdkafka's "all brokers". */
        if (parse_int(s, -1, MAX_BROKERS, &v) || v == 0)
                return -1;
        *id = v;
        return 0;
}

static int handle_command(int fd, char *line) {
        char *argv[4] = {0};
        int argc      = 0;
        char *save    = NULL;
        char *tok;
        int32_t id;
        int n;

        for (tok = strtok_r(line, " \t\r", &save); tok && argc < 4;
             tok = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = tok;
        if (tok)
                return reply(fd, "error too many arguments");
        if (argc == 0)
                return reply(fd, "error empty command");

        if (!strcmp(argv[0], "ping") && argc == 1) {
                return reply(fd, "ok");
        } else if (!strcmp(argv[0], "bootstrap") && argc == 1) {
                return reply(fd, "ok %s", bootstraps);
        } else if ((!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) &&
                   argc == 2) {
                if (parse_broker_id(argv[1], &id))
                        return reply(fd, "error invalid broker id: %s",
                                     argv[1]);
                if (id > broker_cnt)
                        return reply(fd, "error no broker %d (brokers 1..%d)",
                                     id, broker_cnt);
                logf_("broker %d %s (control)", id, argv[0]);
                return reply_err(fd, argv[0][0] == 'd'
                                  ? rd_kafka_mock_broker_set_down(mcluster, id)
                                  : rd_kafka_mock_broker_set_up(mcluster, id));
        } else if (!strcmp(argv[0], "rtt") && argc == 3) {
                if (parse_broker_id(argv[1], &id))
                        return reply(fd, "error invalid broker id: %s",
                                     argv[1]);
                if (id > broker_cnt)
                        return reply(fd, "error no broker %d (brokers 1..%d)",
                                     id, broker_cnt);
                if (parse_int(argv[2], 0, 600000, &n))
                        return reply(fd, "error invalid rtt ms: %s", argv[2]);
                logf_("broker %d rtt %d ms (control)", id, n);
                return reply_err(fd, rd_kafka_mock_broker_set_rtt(mcluster, id, n));
        } else if (!strcmp(argv[0], "create-topic") && argc == 3) {
                if (!valid_topic_name(argv[1]))
                        return reply(fd, "error invalid topic name: %s",
                                     argv[1]);
                if (parse_int(argv[2], 1, 10000, &n))
                        return reply(fd, "error invalid partition count: %s",
                                     argv[2]);
                return reply_err(fd, rd_kafka_mock_topic_create(
                                  mcluster, argv[1], n,
                                  replication_for(broker_cnt)));
        }
        return reply(fd, "error unknown command or wrong arguments: %s",
                     argv[0]);
}

/* Consumes what is readable on a client; returns -1 when it must be closed. */
static int client_read(struct client *c) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        size_t start = 0, i;
        if (r < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -1;
        if (r == 0)
                return -1;
        c->len += (size_t)r;
        for (i = 0; i < c->len; i++) {
                if (c->buf[i] != '\n')
                        continue;
                c->buf[i] = '\0';
                handle_command(c->fd, c->buf + start);
                start = i + 1;
        }
        if (start > 0) {
                memmove(c->buf, c->buf + start, c->len - start);
                c->len -= start;
        }
        if (c->len == sizeof(c->buf)) {
                reply(c->fd, "error line too long");
                return -1;
        }
        return 0;
}

/* True when 127.0.0.1:port can be bound the way the mock binds it. Checked up
 * front because librdkafka 2.15 aborts (an assertion in
 * rd_kafka_mock_cluster_destroy) instead of returning NULL when a broker
 * listener cannot bind. */
static int port_free(int port) {
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port   = htons((uint16_t)port),
                                  .sin_addr = {.s_addr = htonl(INADDR_LOOPBACK)}};
        int on = 1, ok;
        int s  = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return 0;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        ok = bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        close(s);
        return ok;
}

static int control_listen(int port) {
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port   = htons((uint16_t)port),
                                  .sin_addr = {.s_addr = htonl(INADDR_LOOPBACK)}};
        int on = 1;
        int s  = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -1;
        /* Lets `down` + `up` of the stack reuse the port despite TIME_WAIT. */
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
            listen(s, 16) < 0) {
                int e = errno;
                close(s);
                errno = e;
                return -1;
        }
        return s;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv) {
        static struct options opts;
        struct client clients[MAX_CLIENTS];
        struct pollfd pfds[2 + MAX_CLIENTS];
        char errstr[256];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        sigset_t sigs;
        int sfd, lfd, i, nclients = 0, running = 1;

        if (parse_options(argc, argv, &opts))
                return 2;
        broker_cnt = opts.brokers;
        setvbuf(stdout, NULL, _IOLBF, 0);

        /* Block the stop signals before librdkafka starts threads (they
         * inherit the mask), so they are only ever read from the signalfd in
         * the main loop and shutdown runs on this thread. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGHUP);
        sigprocmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
        if (sfd < 0) {
                logf_("signalfd: %s", strerror(errno));
                return 1;
        }

        /* Bind the control port first: if it is taken, fail before building a
         * cluster, with the port in the message. */
        lfd = control_listen(opts.control_port);
        if (lfd < 0) {
                logf_("cannot listen on control port 127.0.0.1:%d: %s",
                      opts.control_port, strerror(errno));
                return 1;
        }

        /* The mock cluster needs a client handle to hang off; this producer is
         * never used to produce. */
        conf = rd_kafka_conf_new();
        /* Hides the NOTICE-level "No bootstrap.servers configured" warning
         * about this idle handle; the mock's own failures log at ERR/CRIT. */
        if (!opts.debug && rd_kafka_conf_set(conf, "log_level", "4", errstr,
                                             sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                logf_("%s", errstr);
                return 1;
        }
        if (opts.debug &&
            rd_kafka_conf_set(conf, "debug", "mock,protocol", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                logf_("%s", errstr);
                return 1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                logf_("rd_kafka_new: %s", errstr);
                return 1;
        }

        for (i = 0; i < opts.brokers; i++) {
                if (!port_free(opts.port_base + i)) {
                        logf_("broker port 127.0.0.1:%d is already in use",
                              opts.port_base + i);
                        rd_kafka_destroy(rk);
                        return 1;
                }
        }

        rewrite_next_port = opts.port_base;
        rewrite_active    = 1;
        mcluster          = rd_kafka_mock_cluster_new(rk, opts.brokers);
        rewrite_active    = 0;
        if (!mcluster) {
                logf_("cannot create the mock cluster: is a port in "
                      "127.0.0.1:%d..%d already in use?",
                      opts.port_base, opts.port_base + opts.brokers - 1);
                rd_kafka_destroy(rk);
                return 1;
        }
        if (rewrite_count != opts.brokers) {
                /* The bind() mapping assumption no longer holds for this
                 * librdkafka; refuse rather than listen on random ports. */
                logf_("expected %d broker listeners, rewrote %d binds",
                      opts.brokers, rewrite_count);
                rd_kafka_mock_cluster_destroy(mcluster);
                rd_kafka_destroy(rk);
                return 1;
        }
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);

        /* The default controller id (-1 in some versions, 0 in 2.0) names no
         * broker, and kafkajs' idempotent producer then fails with
         * KafkaJSBrokerNotFound. */
        rd_kafka_mock_set_controller_id(mcluster, 1);
        /* The default 3 s delay makes every first group join take 3 s. */
        rd_kafka_mock_group_initial_rebalance_delay_ms(mcluster, 0);
        rd_kafka_mock_set_apiversion(mcluster, API_KEY_LEAVE_GROUP, 0,
                                     LEAVE_GROUP_MAX_VERSION);

        for (i = 0; i < opts.topic_cnt; i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    mcluster, opts.topics[i].name, opts.topics[i].partitions,
                    replication_for(opts.brokers));
                if (err) {
                        logf_("topic %s: %s", opts.topics[i].name,
                              rd_kafka_err2str(err));
                        rd_kafka_mock_cluster_destroy(mcluster);
                        rd_kafka_destroy(rk);
                        return 1;
                }
                logf_("topic %s partitions=%d", opts.topics[i].name,
                      opts.topics[i].partitions);
        }

        logf_("librdkafka %s, %d broker(s) on %s, control on 127.0.0.1:%d",
              rd_kafka_version_str(), opts.brokers, bootstraps,
              opts.control_port);
        printf("READY %s\n", bootstraps);

        while (running) {
                int n = 0;
                pfds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
                pfds[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
                for (i = 0; i < nclients; i++)
                        pfds[n++] = (struct pollfd){.fd     = clients[i].fd,
                                                    .events = POLLIN};
                if (poll(pfds, (nfds_t)n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        logf_("poll: %s", strerror(errno));
                        break;
                }
                if (pfds[0].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == sizeof(si))
                                logf_("signal %u, shutting down",
                                      si.ssi_signo);
                        running = 0;
                        break;
                }
                /* Clients first, by index from the end, so closing one does
                 * not shift the ones not yet looked at. pfds[2+i] still
                 * matches clients[i] because accept() below comes after. */
                for (i = nclients - 1; i >= 0; i--) {
                        if (!pfds[2 + i].revents)
                                continue;
                        if (client_read(&clients[i]) < 0) {
                                close(clients[i].fd);
                                clients[i] = clients[--nclients];
                        }
                }
                if (pfds[1].revents & POLLIN) {
                        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (cfd >= 0) {
                                if (nclients == MAX_CLIENTS) {
                                        reply(cfd, "error too many clients");
                                        close(cfd);
                                } else {
                                        clients[nclients].fd  = cfd;
                                        clients[nclients].len = 0;
                                        nclients++;
                                }
                        }
                }
        }

        for (i = 0; i < nclients; i++)
                close(clients[i].fd);
        close(lfd);
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        logf_("stopped");
        return 0;
}
