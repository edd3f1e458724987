/*
 * upstream.c — see upstream.h. A curl multi handle per vd_upstream: its
 * connection cache keeps replica connections alive between calls. Easy
 * handles live for one call. DNS answers are kept 5 s only: Kubernetes moves
 * a pod to a new address when it reschedules it.
 */
#include "router/upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vd_upstream {
    CURLM *multi; /* owned; its connection cache serves the next calls */
};

typedef struct transfer {
    vd_up_req *req;
    CURL *easy;
    struct curl_slist *headers;
    size_t cap;
    bool too_big;
} transfer;

int vd_upstream_create(vd_upstream **out)
{
    vd_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->multi = curl_multi_init();
    if (!u->multi) {
        free(u);
        return -ENOMEM;
    }
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 64L);
    *out = u;
    return 0;
}

void vd_upstream_destroy(vd_upstream *u)
{
    if (!u)
        return;
    curl_multi_cleanup(u->multi);
    free(u);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    transfer *t = userdata;
    size_t n = size * nmemb;
    vd_up_req *r = t->req;
    if (r->answer_len + n > VD_UPSTREAM_MAX_ANSWER) {
        t->too_big = true;
        return 0; /* curl fails the transfer */
    }
    if (r->answer_len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < r->answer_len + n + 1)
            cap *= 2;
        char *a = realloc(r->answer, cap);
        if (!a)
            return 0;
        r->answer = a;
        t->cap = cap;
    }
    memcpy(r->answer + r->answer_len, ptr, n);
    r->answer_len += n;
    r->answer[r->answer_len] = 0;
    return n;
}

static bool setup(transfer *t)
{
    vd_up_req *r = t->req;
    CURL *e = t->easy = curl_easy_init();
    if (!e)
        return false;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 5L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    if (strcmp(r->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (r->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    }
    /* No "Expect: 100-continue" round trip for large bodies. */
    t->headers = curl_slist_append(NULL, "Expect:");
    if (r->body)
        t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    for (const char *const *h = r->headers; h && *h; h++)
        t->headers = curl_slist_append(t->headers, *h);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    return t->headers != NULL;
}

void vd_upstream_run(vd_upstream *u, vd_up_req *reqs, size_t n)
{
    transfer *ts = calloc(n ? n : 1, sizeof *ts);
    for (size_t i = 0; i < n; i++) {
        vd_up_req *r = &reqs[i];
        free(r->answer);
        r->answer = NULL;
        r->answer_len = 0;
        r->status = 0;
        r->error[0] = 0;
        if (!ts) {
            snprintf(r->error, sizeof r->error, "out of memory");
            continue;
        }
        ts[i].req = r;
        if (!setup(&ts[i]) || curl_multi_add_handle(u->multi, ts[i].easy) != CURLM_OK) {
            snprintf(r->error, sizeof r->error, "cannot start the request");
            curl_easy_cleanup(ts[i].easy);
            ts[i].easy = NULL;
        }
    }
    int running = 1;
    while (ts && running) {
        if (curl_multi_perform(u->multi, &running) != CURLM_OK)
            break;
        if (running && curl_multi_poll(u->multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
    CURLMsg *msg;
    int left;
    while (ts && (msg = curl_multi_info_read(u->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (ts[i].easy != msg->easy_handle)
                continue;
            vd_up_req *r = ts[i].req;
            if (msg->data.result == CURLE_OK) {
                curl_easy_getinfo(ts[i].easy, CURLINFO_RESPONSE_CODE, &r->status);
            } else {
                r->status = 0;
                if (ts[i].too_big)
                    snprintf(r->error, sizeof r->error, "the answer is larger than %zu MiB",
                             VD_UPSTREAM_MAX_ANSWER >> 20);
                else if (!r->error[0])
                    snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(msg->data.result));
            }
        }
    }
    for (size_t i = 0; ts && i < n; i++) {
        if (ts[i].easy) {
            curl_multi_remove_handle(u->multi, ts[i].easy);
            curl_easy_cleanup(ts[i].easy);
        }
        curl_slist_free_all(ts[i].headers);
        if (!ts[i].req->status && !ts[i].req->error[0])
            snprintf(ts[i].req->error, sizeof ts[i].req->error, "no answer");
    }
    free(ts);
}

void vd_up_reqs_free(vd_up_req *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(reqs[i].answer);
        reqs[i].answer = NULL;
    }
}
