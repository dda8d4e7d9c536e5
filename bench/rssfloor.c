/*
 * rssfloor.c - the memory any process pays for loading and initialising
 * libcurl (with the libraries it pulls in), for comparison with the idle
 * RSS of `mockhost run`: curl_global_init, one multi handle, one easy
 * handle, one thread waiting in curl_multi_poll, then VmRSS and RssAnon
 * from /proc/self/status.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *waiter(void *arg)
{
	curl_multi_poll(arg, NULL, 0, 2000, NULL);
	return NULL;
}

int main(void)
{
	CURLM *m;
	CURL *e;
	pthread_t t;
	char line[256];
	FILE *f;

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		return 1;
	m = curl_multi_init();
	e = curl_easy_init();
	if (!m || !e || pthread_create(&t, NULL, waiter, m) != 0)
		return 1;
	usleep(500 * 1000);
	f = fopen("/proc/self/status", "r");
	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0 || strncmp(line, "RssAnon:", 8) == 0)
			fputs(line, stdout);
	fclose(f);
	curl_multi_wakeup(m);
	pthread_join(t, NULL);
	curl_easy_cleanup(e);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return 0;
}
