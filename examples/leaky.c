/*
 * leaky.c - a small program to try memtrace on: it builds a linked list,
 * grows a buffer with realloc, frees most of it and leaks three blocks on
 * purpose (100 + 200 + 300 bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next;
	char payload[48];
};

int main(void)
{
	struct node *head = NULL;
	for (int i = 0; i < 1000; i++) {
		struct node *n = malloc(sizeof *n);
		if (!n)
			return 1;
		snprintf(n->payload, sizeof n->payload, "node %d", i);
		n->next = head;
		head = n;
	}
	char *buf = NULL;
	for (size_t cap = 16; cap <= 1 << 20; cap *= 2) {
		char *grown = realloc(buf, cap);
		if (!grown)
			return 1;
		buf = grown;
		memset(buf, 'x', cap);
	}
	while (head) {
		struct node *next = head->next;
		free(head);
		head = next;
	}
	free(buf);
	for (int i = 1; i <= 3; i++)
		if (!malloc(100 * (size_t)i)) /* leaked on purpose */
			return 1;
	puts("leaky: done");
	return 0;
}
