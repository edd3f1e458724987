/* Configuration precedence: flags > environment > file > defaults. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "server/config.h"

static int load(vd_config *c, int argc, char **argv, char **envp, vd_errmsg *em)
{
    vd_config_action a;
    return vd_config_load(c, argc, argv, envp, &a, em);
}

Test(config, defaults)
{
    vd_config c;
    char *argv[] = {"vectord", NULL};
    cr_assert_eq(load(&c, 1, argv, NULL, NULL), 0);
    cr_assert_str_eq(c.listen, "127.0.0.1:6480");
    cr_assert_eq(c.port, 6480);
    cr_assert_str_eq(c.host, "127.0.0.1");
    cr_assert_eq(c.max_k, 1000);
    cr_assert_str_eq(c.data_dir, "./data");
}

Test(config, precedence)
{
    char path[] = "/tmp/vectord-test-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "; comment\n[server]\nlisten = 0.0.0.0:7000\nlog_level = warn\n[limits]\nmax_k = 50\n"
               "max_dim = 100\n[storage]\ndata_dir = /from/file\n");
    fclose(f);
    char cfgflag[64];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", path);
    char *argv[] = {"vectord", cfgflag, "--listen", "127.0.0.1:7001", "--set", "max_dim=200", NULL};
    char *envp[] = {"VECTORD_MAX_K=60", "VECTORD_MAX_DIM=150", "VECTORD_LISTEN=1.2.3.4:1", "HOME=/x", NULL};
    vd_config c;
    vd_errmsg em = {{0}};
    cr_assert_eq(load(&c, 6, argv, envp, &em), 0, "%s", em.text);
    cr_assert_str_eq(c.listen, "127.0.0.1:7001", "flag beats env and file");
    cr_assert_eq(c.max_k, 60, "env beats file");
    cr_assert_eq(c.max_dim, 200, "--set beats env");
    cr_assert_str_eq(c.log_level, "warn", "file beats default");
    cr_assert_str_eq(c.data_dir, "/from/file");
    unlink(path);
}

Test(config, errors_name_the_setting)
{
    vd_config c;
    vd_errmsg em = {{0}};
    char *a1[] = {"vectord", "--set", "max_k=0", NULL};
    cr_assert_neq(load(&c, 3, a1, NULL, &em), 0);
    cr_assert(strstr(em.text, "max_k must be an integer from 1"), "%s", em.text);
    char *a2[] = {"vectord", "--listen", "nohost", NULL};
    cr_assert_neq(load(&c, 3, a2, NULL, &em), 0);
    cr_assert(strstr(em.text, "listen must be HOST:PORT"), "%s", em.text);
    char *a3[] = {"vectord", "--bogus", NULL};
    cr_assert_neq(load(&c, 2, a3, NULL, &em), 0);
    char *e4[] = {"VECTORD_LOG_LEVEL=loud", NULL};
    char *a4[] = {"vectord", NULL};
    cr_assert_neq(load(&c, 1, a4, e4, &em), 0);
    cr_assert(strstr(em.text, "log_level"), "%s", em.text);
    char *a5[] = {"vectord", "--config", "/nonexistent/vectord.conf", NULL};
    cr_assert_neq(load(&c, 3, a5, NULL, &em), 0);
    cr_assert(strstr(em.text, "cannot read config file"), "%s", em.text);
    char *a6[] = {"vectord", "--log-level", NULL};
    cr_assert_neq(load(&c, 2, a6, NULL, &em), 0);
    char *a7[] = {"vectord", "--set", "feed_dsn=host=x", "--set", "feed_collection=no such name", NULL};
    cr_assert_neq(load(&c, 5, a7, NULL, &em), 0);
    cr_assert(strstr(em.text, "feed_collection must be"), "%s", em.text);
    char *a8[] = {"vectord", "--set", "feed_dim=5000", NULL};
    cr_assert_neq(load(&c, 3, a8, NULL, &em), 0);
    cr_assert(strstr(em.text, "feed_dim 5000 is above max_dim 4096"), "%s", em.text);
}

Test(config, shipped_file_parses_and_matches_defaults)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config/vectord.conf", SOURCE_ROOT);
    char flag[600];
    snprintf(flag, sizeof flag, "--config=%s", path);
    char *argv[] = {"vectord", flag, NULL};
    char *plain[] = {"vectord", NULL};
    vd_config from_file, defaults;
    vd_errmsg em = {{0}};
    cr_assert_eq(load(&from_file, 2, argv, NULL, &em), 0, "%s", em.text);
    cr_assert_eq(load(&defaults, 1, plain, NULL, &em), 0);
    memset(from_file.config_file, 0, sizeof from_file.config_file);
    cr_assert_eq(memcmp(&from_file, &defaults, sizeof defaults), 0,
                 "config/vectord.conf must show exactly the defaults");
}
