#!/usr/bin/perl
# SPDX-License-Identifier: GPL-2.0-or-later
# libvent from Perl through FFI::Platypus: heap events, timeouts, error codes.
# Run with: VENT_LIB=build/lib/libvent.so.1 prove test/ffi/vent.t
use strict;
use warnings;
use Test::More;
use POSIX qw(EINVAL EEXIST EBUSY);
use Time::HiRes qw(time);

if (my $why = $ENV{VENT_FFI_SKIP}) {
	print STDERR "SKIP: $why\n";
	exit 77;
}

# --- snippet: perl-load (README.md) ---
use FFI::Platypus 2.00;

my $ffi = FFI::Platypus->new(api => 2, lib => $ENV{VENT_LIB} // 'libvent.so.1');
$ffi->type('(opaque, uint32)->int' => 'vent_cb');
$ffi->attach([vent_new_dispatcher => 'new_dispatcher'] => ['int'] => 'opaque');
$ffi->attach([vent_free_dispatcher => 'free_dispatcher'] => ['opaque'] => 'void');
$ffi->attach([vent_event_add => 'event_add'] => ['opaque', 'opaque'] => 'int');
$ffi->attach([vent_event_remove => 'event_remove'] => ['opaque'] => 'int');
$ffi->attach(vent_wait             => ['opaque', 'int', 'opaque'] => 'int');
$ffi->attach(vent_event_new        => ['int', 'uint32', 'vent_cb', 'opaque'] => 'opaque');
$ffi->attach(vent_event_free       => ['opaque'] => 'int');
$ffi->attach(vent_event_fd         => ['opaque'] => 'int');
$ffi->attach(vent_event_reason     => ['opaque'] => 'int');
$ffi->attach(vent_event_set_events => ['opaque', 'uint32'] => 'int');
$ffi->attach(vent_event_set_timeout_ms => ['opaque', 'sint64'] => 'int');
$ffi->attach(vent_strerror         => ['int'] => 'string');

use constant {
	CLOCK_MONOTONIC => 1, EPOLLIN => 1,
	REASON_EVENT_OCCURED => 0, REASON_TIMEOUT => 1,
	EVENTCB_CONTINUE => 0, EVENTCB_REMOVE => 1, EVENTCB_CLEANUP => 2,
};
# --- end snippet ---

alarm 60;

sub fd_count { opendir(my $d, '/proc/self/fd') or die; my @e = readdir $d; return scalar @e }
my $nfds = fd_count();

my $dsp = new_dispatcher(CLOCK_MONOTONIC);
ok($dsp, 'new_dispatcher');

# Run vent until $cond is true or 10 s passed.
sub wait_until {
	my ($cond) = @_;
	my $deadline = time + 10;
	while (!$cond->()) {
		return 0 if time > $deadline;
		return 0 if vent_wait($dsp, 1000, undef) < 0;
	}
	return 1;
}

subtest 'pipe event with a timeout' => sub {
	pipe(my $r, my $w) or die;
	my @seen;
	my $cb = $ffi->closure(sub {
		my ($evt, $mask) = @_;
		push @seen, [vent_event_reason($evt), $mask, time];
		sysread($r, my $buf, 100) if vent_event_reason($evt) == REASON_EVENT_OCCURED;
		return EVENTCB_CONTINUE;
	});
	my $evt = vent_event_new(fileno($r), EPOLLIN, $cb, undef);
	ok($evt, 'vent_event_new');
	is(vent_event_fd($evt), fileno($r), 'vent_event_fd');
	is(vent_event_set_timeout_ms($evt, 50), 0, 'timeout 50 ms');
	my $start = time;
	is(event_add($dsp, $evt), 0, 'event_add');
	ok(wait_until(sub { @seen }), 'callback ran');
	is($seen[0][0], REASON_TIMEOUT, 'reason: timeout');
	is($seen[0][1], 0, 'mask 0 on timeout');
	cmp_ok($seen[0][2] - $start, '>=', 0.049, 'not early');
	syswrite($w, 'x');
	ok(wait_until(sub { @seen == 2 }), 'fd callback ran');
	is($seen[1][0], REASON_EVENT_OCCURED, 'reason: event occured');
	ok($seen[1][1] & EPOLLIN, 'mask has EPOLLIN');
	is(vent_event_set_events($evt, 0), 0, 'disable');
	syswrite($w, 'y');
	is(vent_wait($dsp, 30, undef), 0, 'disabled: silent');
	is(vent_event_free($evt), 0, 'vent_event_free removes and frees');
	is(vent_wait($dsp, 30, undef), 0, 'gone');
};

subtest 'timer, REMOVE and CLEANUP' => sub {
	my $n = 0;
	my $cb = $ffi->closure(sub {
		my ($evt, $mask) = @_;
		$n++;
		return $n == 1 ? EVENTCB_REMOVE : EVENTCB_CLEANUP;
	});
	my $tim = vent_event_new(-1, 0, $cb, undef);
	is(vent_event_fd($tim), -1, 'pure timer');
	is(vent_event_set_timeout_ms($tim, 5), 0, 'arm');
	is(event_add($dsp, $tim), 0, 'add');
	ok(wait_until(sub { $n == 1 }), 'fired');
	is(event_remove($tim), -EINVAL, 'REMOVE removed it');
	is(vent_event_set_timeout_ms($tim, 5), 0, 're-arm');
	is(event_add($dsp, $tim), 0, 're-add');
	ok(wait_until(sub { $n == 2 }), 'fired again');
	# CLEANUP: the default cleanup freed $tim; don't touch it again.
	is(vent_wait($dsp, 30, undef), 0, 'no more callbacks');
};

subtest 'error codes' => sub {
	pipe(my $r, my $w) or die;
	my $cb = $ffi->closure(sub { EVENTCB_CONTINUE });
	my $ea = vent_event_new(fileno($r), EPOLLIN, $cb, undef);
	my $eb = vent_event_new(fileno($r), EPOLLIN, $cb, undef);
	is(event_add($dsp, $ea), 0, 'add');
	is(event_add($dsp, $ea), -EEXIST, 'added twice: -EEXIST');
	is(event_add($dsp, $eb), -EEXIST, 'same fd: -EEXIST');
	is(vent_event_set_timeout_ms($ea, -1), -EINVAL, 'negative timeout: -EINVAL');
	is(event_remove($eb), -EINVAL, 'remove unadded: -EINVAL');
	is(vent_wait($dsp, -2, undef), -EINVAL, 'vent_wait(-2): -EINVAL');
	is(vent_event_fd(undef), -EINVAL, 'NULL event: -EINVAL');
	is(vent_strerror(-EEXIST), 'File exists', 'vent_strerror');
	is(vent_event_free($ea), 0, 'free a');
	is(vent_event_free($eb), 0, 'free b');
};

# The Linux::Event use case: wait for a child, at most N ms. One event (a
# pidfd from vent/sources.h, which fills a struct event we allocate) with one
# callback; its reason says which came first.
SKIP: {
	skip 'libvent has no vent/sources.h', 1 unless $ffi->find_symbol('vent_pid_init');
	subtest 'child process with a timeout (vent_pid_init)' => sub {
		$ffi->attach(vent_event_sizeof => [] => 'size_t');
		$ffi->attach(vent_pid_init => ['opaque', 'int', 'vent_cb'] => 'int');
		$ffi->attach(vent_pid_wait => ['opaque', 'opaque'] => 'int');
		use FFI::Platypus::Memory qw(calloc free);
		use POSIX qw(SIGTERM SIGCHLD ESRCH);
		use constant CLD_EXITED => 1;
		use constant CLD_KILLED => 2;

		# Runs a child that lives $life seconds; gives it $limit_ms.
		my $run = sub {
			my ($life, $limit_ms) = @_;
			my $pid = fork // die "fork: $!";
			if (!$pid) {
				exec 'sleep', $life or POSIX::_exit(127);
			}
			my ($timed_out, @exit);
			my $info = calloc(1, 128);    # siginfo_t
			my $cb = $ffi->closure(sub {
				my ($evt, $mask) = @_;
				if (vent_event_reason($evt) == REASON_TIMEOUT) {
					$timed_out = 1;
					kill 'TERM', $pid;
					return EVENTCB_CONTINUE;    # now wait for the exit
				}
				my $rc = vent_pid_wait($evt, $info);
				my $si = $ffi->cast('opaque' => 'sint32[7]', $info);
				@exit = ($rc, $si->[0], $si->[2], $si->[6]);    # signo, code, status
				return EVENTCB_CLEANUP;    # closes the pidfd
			});
			my $evt = calloc(1, vent_event_sizeof());
			is(vent_pid_init($evt, $pid, $cb), 0, 'vent_pid_init');
			is(vent_event_set_timeout_ms($evt, $limit_ms), 0, "limit $limit_ms ms");
			is(event_add($dsp, $evt), 0, 'event_add');
			ok(wait_until(sub { @exit }), 'child reported');
			free($evt);
			free($info);
			return ($timed_out, @exit);
		};

		my ($timed_out, $rc, $signo, $code, $status) = $run->(30, 100);
		ok($timed_out, 'slow child: timeout first');
		is($rc, 0, 'vent_pid_wait reaped it');
		is($signo, SIGCHLD, 'si_signo');
		is($code, CLD_KILLED, 'killed');
		is($status, SIGTERM, 'by SIGTERM');

		($timed_out, $rc, $signo, $code, $status) = $run->(0, 10000);
		ok(!$timed_out, 'quick child: exit first');
		is($rc, 0, 'reaped');
		is($code, CLD_EXITED, 'exited');
		is($status, 0, 'status 0');

		my $evt = calloc(1, vent_event_sizeof());
		my $cb = $ffi->closure(sub { EVENTCB_CONTINUE });
		is(vent_pid_init($evt, 0, $cb), -EINVAL, 'pid 0: -EINVAL');
		my $gone = fork // die;
		POSIX::_exit(0) if !$gone;
		waitpid($gone, 0);
		is(vent_pid_init($evt, $gone, $cb), -ESRCH, 'reaped pid: -ESRCH');
		free($evt);
	};
}

free_dispatcher($dsp);
is(fd_count(), $nfds, 'no fd leaked');
done_testing();
