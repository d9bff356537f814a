/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: libvirt.c */
#include <stdio.h>
#include <vent/event.h>
#include <vent/libvirt.h>

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *dsp)
{
	(void)c;
	printf("%s: lifecycle event %d (%d)\n", virDomainGetName(dom), event, detail);
	return vent_loop_stop(dsp); /* one event is enough for this demo */
}

int main(int argc, char **argv)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	if (!dsp || vent_libvirt_register(dsp) < 0) /* before the first connection */
		return 1;
	virConnectPtr conn = virConnectOpen(argc > 1 ? argv[1] : "test:///default");
	if (!conn || virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
			VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), dsp, NULL) < 0)
		return 1;
	virDomainPtr dom = virDomainLookupByName(conn, "test"); /* the test driver's domain */
	if (dom && virDomainDestroy(dom) == 0) /* any thread may call libvirt */
		event_loop(dsp, NULL, NULL); /* callbacks run here, on this thread */
	return 0;
}
