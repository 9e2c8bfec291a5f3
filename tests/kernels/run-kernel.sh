#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-kernel.sh [OPTIONS] KERNEL [--] COMMAND [ARG...]
#
# Runs COMMAND on a Debian kernel booted under QEMU, against this machine's
# own userland: the host's / is the guest's root (9p, read-only, under a
# writable overlay on a fresh ext4 disk), so a build tree of any worktree
# runs as it is, on the kernel users have rather than on the host's.
#
# KERNEL is a Debian kernel package or a short form of one:
#   6.1                 newest linux-image-6.1.0-NN-amd64-unsigned
#   6.12                newest linux-image-6.12.*+deb12-amd64-unsigned
#   6.1.0-57, 6.12.117+deb12     linux-image-<that>-amd64-unsigned
#   linux-image-...     that package;   /path/to/x.deb   that file
#
# The package is fetched with `apt-get download` and kept, with its
# extracted tree, in the cache ($UMK_CACHE, default /var/cache/umirror-kernels,
# shared by everyone on the machine). The initramfs (busybox-static and the
# virtio, 9p, virtio-blk, ext4 and overlay modules with their dependencies)
# is packed for each run.
#
# With --systemd the initramfs does not run COMMAND itself: it switches
# root into the overlay and execs /lib/systemd/systemd as PID 1, which
# boots the host's Debian userland to umk.target; a oneshot unit there runs
# COMMAND and powers the VM off.
#
# Exit: COMMAND's status; 77 when qemu, busybox-static or the kernel
# package cannot be had (reason printed); 124 when the overall timeout
# expired; 125 when the VM ended without reporting a status (boot failure,
# panic: see the console output).
#
# Options: see usage() below.
set -euo pipefail

readonly ME=${0##*/}
readonly DEFAULT_CACHE=/var/cache/umirror-kernels

# Modules the guest needs to reach its root, /tmp and the results share.
# Dependencies come from each module's own modinfo "depends=" (the package
# ships no modules.dep: Debian's postinst runs depmod). crc32c is a crypto
# algorithm ext4/jbd2 request by name at mount time (a softdep, not a
# depends), and nothing in the guest can modprobe it, so it is listed.
readonly REQUIRED_MODULES=(virtio virtio_ring virtio_pci virtio_blk 9pnet 9pnet_virtio 9p ext4 crc32c_generic)
readonly OPTIONAL_MODULES=(crc32c_intel overlay)

cache=${UMK_CACHE:-$DEFAULT_CACHE}
accel=${UMK_ACCEL:-tcg}
timeout_s=${UMK_TIMEOUT:-3600}
scale=${UMK_TIMEOUT_SCALE:-5}
mem=4G
smp=2
numa2=0
quiet=0
root_mode=overlay
systemd=0
build=
workdir=
out=
append=
disk_size=16G
qemu_extra=()
guest_env=()

usage() {
	cat <<EOF
Usage: $ME [OPTIONS] KERNEL [--] COMMAND [ARG...]

Boot Debian kernel KERNEL (6.1, 6.12, 6.1.0-57, linux-image-..., x.deb) under
QEMU with this machine's / as root and run COMMAND there as root.

  --build DIR       COMMAND runs in build dir DIR; its ctest timeouts are
                    multiplied by UMK_TIMEOUT_SCALE (default $scale) inside the
                    VM, and DIR/daemon/umirrord is started once to print the
                    kernel features it detects. The command gets the factor
                    as UMIRROR_TEST_TIMEOUT_SCALE in any case (the
                    integration harness multiplies its watchdogs by it)
  -C, --cd DIR      run COMMAND in DIR (default: --build DIR, else /)
  --timeout SEC     hard limit for the whole run, boot included (default
                    $timeout_s; \$UMK_TIMEOUT)
  --accel tcg|kvm   QEMU accelerator (default \$UMK_ACCEL or tcg: KVM hangs
                    at early boot on nested hosts such as this one)
  --numa2           two NUMA nodes, one CPU and half the memory on each
  -m SIZE           guest memory (default $mem);  --smp N  CPUs (default $smp)
  --append ARGS     extra kernel command line (e.g. transparent_hugepage=madvise)
  --qemu-arg ARG    one extra QEMU argument (repeatable; also \$UMK_QEMU_ARGS,
                    split on spaces)
  --env VAR=VALUE   set VAR for COMMAND (repeatable); the environment is
                    otherwise PATH, HOME=/root, TMPDIR=/tmp, LANG=C.UTF-8
  --systemd         boot the host's userland under systemd as PID 1
                    (switch_root into the overlay) and run COMMAND from a
                    oneshot unit (umk-run.service) once basic.target is up;
                    the journal is kept as journal.log

The guest's /tmp is an empty ext4 disk; the host's /tmp is read-only at
/run/host-tmp. Everything else is the host's tree (writes go to an overlay
and are lost at power-off; results belong in --out DIR via the command's
output, or in /run/umk, which is --out DIR).
  --ro              root is the read-only 9p share itself (no overlay); only
                    /tmp, /run, /dev/shm and (with --build) DIR/Testing are
                    writable
  --disk-size SIZE  the scratch disk behind /tmp and the overlay (default $disk_size)
  --out DIR         keep console.log, output.log, status, features, dmesg.log
                    in DIR (default: a temporary directory, removed)
  -q, --quiet       do not stream the console (it goes to --out DIR/console.log;
                    without --out the command's output is printed at the end)
  --cache DIR       package cache (default \$UMK_CACHE or $DEFAULT_CACHE)
  -h, --help        this text

Exit: COMMAND's status; 77 no qemu/package; 124 timeout; 125 no status.
EOF
}

say() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() { say "error: $*"; exit 1; }
# A missing prerequisite is a skip, not a failure, with the reason printed.
skip() { say "SKIP: $*"; exit 77; }

parse_args() {
	while [[ $# -gt 0 ]]; do
		case $1 in
		--build) build=$(realpath -e "$2") || die "no build dir $2"; shift 2 ;;
		-C|--cd) workdir=$2; shift 2 ;;
		--timeout) timeout_s=$2; shift 2 ;;
		--accel) accel=$2; shift 2 ;;
		--numa2) numa2=1; shift ;;
		-m) mem=$2; shift 2 ;;
		--smp) smp=$2; shift 2 ;;
		--append) append=$2; shift 2 ;;
		--qemu-arg) qemu_extra+=("$2"); shift 2 ;;
		--env) guest_env+=("$2"); shift 2 ;;
		--ro) root_mode=ro; shift ;;
		--systemd) systemd=1; shift ;;
		--disk-size) disk_size=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		-q|--quiet) quiet=1; shift ;;
		--cache) cache=$2; shift 2 ;;
		-h|--help) usage; exit 0 ;;
		--) shift; break ;;
		-*) usage >&2; die "unknown option $1" ;;
		*) break ;;
		esac
	done
	[[ $# -ge 2 ]] || { usage >&2; exit 2; }
	kernel_arg=$1
	shift
	[[ ${1:-} == -- ]] && shift
	[[ $# -ge 1 ]] || { usage >&2; exit 2; }
	command_argv=("$@")
	[[ -z $workdir ]] && workdir=${build:-/}
	# the guest's /tmp is its scratch disk: the host's is at /run/host-tmp
	# and a build tree there would not find its own absolute paths
	[[ $build == /tmp/* ]] && die "--build $build: a build under /tmp is not visible in the guest (its /tmp is a fresh disk); build elsewhere"
	if [[ -n ${UMK_QEMU_ARGS:-} ]]; then
		local -a extra
		read -ra extra <<<"$UMK_QEMU_ARGS"
		qemu_extra+=("${extra[@]}")
	fi
	case $accel in tcg|kvm) ;; *) die "--accel: tcg or kvm, not $accel" ;; esac
	# systemd needs a writable root (journal, units, /etc/passwd)
	[[ $systemd == 1 && $root_mode == ro ]] && die "--systemd and --ro exclude each other"
	return 0
}

check_host_tools() {
	command -v qemu-system-x86_64 >/dev/null ||
		skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	if [[ $systemd == 1 && ! -x /lib/systemd/systemd ]]; then
		skip "--systemd: /lib/systemd/systemd not installed (apt-get install systemd)"
	fi
	if [[ $accel == kvm && ! -w /dev/kvm ]]; then
		skip "--accel kvm: /dev/kvm is not usable"
	fi
	if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
		say "installing busybox-static (the initramfs' shell and tools)"
		apt-get install -y -q busybox-static >&2 ||
			skip "busybox-static cannot be installed"
	fi
	local t
	for t in dpkg-deb mkfs.ext4 cpio gzip xz zstd flock perl; do
		command -v "$t" >/dev/null || skip "$t not installed"
	done
}

# ---- the kernel package ----------------------------------------------------

# Newest package name matching an extended regex, from apt's lists.
apt_newest() {
	apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' |
		grep -E "$1" | sort -V | tail -n 1 || true
}

# Newest cached .deb whose package name matches (for offline use).
cache_newest() {
	local f
	for f in "$cache"/debs/*.deb; do
		[[ -e $f ]] || continue
		f=${f##*/}
		f=${f%%_*}
		[[ $f =~ $1 ]] && echo "$f"
	done | sort -V | tail -n 1 || true
}

# KERNEL argument -> the regex of the package names it stands for.
kernel_regex() {
	local k=$1 e
	e=${k//./\\.}
	e=${e//+/\\+}
	case $k in
	linux-image-*) echo "^${e}\$" ;;
	[0-9]*.[0-9]*.*) echo "^linux-image-${e}-amd64-unsigned\$" ;;
	# 6.1 is 6.1.0-NN, 6.12 is 6.12.NNN+debNN: no -rt, no -cloud flavour
	[0-9]*.[0-9]*) echo "^linux-image-${e}\\.[0-9]+(-[0-9]+)?(\\+deb[0-9]+)?-amd64-unsigned\$" ;;
	*) die "kernel: a version (6.1, 6.12, 6.1.0-57) or a package name, not '$k'" ;;
	esac
}

# Sets pkg to the package name KERNEL stands for. Prefers apt's view (the
# newest available); runs apt-get update once when apt knows nothing.
resolve_package() {
	local re
	re=$(kernel_regex "$kernel_arg")
	pkg=$(apt_newest "$re")
	if [[ -z $pkg ]]; then
		say "no package matches $re in apt's lists: apt-get update"
		apt-get update -q >&2 || say "apt-get update failed"
		pkg=$(apt_newest "$re")
	fi
	[[ -z $pkg ]] && pkg=$(cache_newest "$re")
	[[ -n $pkg ]] || skip "no Debian kernel package matches '$kernel_arg' ($re)"
}

# Sets deb to the cached .deb of $pkg, downloading it if needed.
fetch_package() {
	local dl
	deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
	[[ -n $deb ]] && return 0
	say "downloading $pkg"
	# apt drops to user _apt for downloads: give it a directory it may write
	dl=$(mktemp -d "$cache/debs/.dl.XXXXXX")
	chmod 0755 "$dl"
	id _apt >/dev/null 2>&1 && chown _apt "$dl"
	if ! (cd "$dl" && apt-get download -q "$pkg" >&2); then
		say "apt-get download failed: apt-get update and retry"
		apt-get update -q >&2 || true
		(cd "$dl" && apt-get download -q "$pkg" >&2) || {
			rm -rf "$dl"
			skip "cannot download $pkg"
		}
	fi
	mv "$dl"/*.deb "$cache/debs/"
	rmdir "$dl"
	deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
}

# Sets tree to the extracted package (boot/, lib/modules/), extracting once.
extract_package() {
	local tmp
	tree=$cache/trees/$pkg
	[[ -e $tree/.complete ]] && return 0
	say "extracting $deb"
	rm -rf "$tree"
	tmp=$(mktemp -d "$cache/trees/.x.XXXXXX")
	dpkg-deb -x "$deb" "$tmp"
	touch "$tmp/.complete"
	chmod 0755 "$tmp"
	mv "$tmp" "$tree"
}

# Everything touching the shared cache runs under one lock: other engineers
# run the matrix at the same time.
prepare_kernel() {
	if [[ $kernel_arg == *.deb ]]; then
		[[ -f $kernel_arg ]] || skip "no such package file $kernel_arg"
		deb=$(realpath "$kernel_arg")
		pkg=$(dpkg-deb -f "$deb" Package)
	fi
	mkdir -p "$cache/debs" "$cache/trees" 2>/dev/null ||
		skip "cannot create the cache $cache (set UMK_CACHE)"
	exec 9>"$cache/.lock"
	flock 9
	if [[ -z ${deb:-} ]]; then
		resolve_package
		fetch_package
	fi
	extract_package
	flock -u 9
	exec 9>&-
	kver=$(find "$tree/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
	vmlinuz=$tree/boot/vmlinuz-$kver
	[[ -n $kver && -f $vmlinuz ]] || die "$pkg has no kernel image"
	pkg_version=$(dpkg-deb -f "$deb" Version)
}

# ---- the initramfs ---------------------------------------------------------

declare -A mod_file=() mod_builtin=() mod_seen=()
mod_order=()

# Index the package's modules by name (dashes are underscores in names).
index_modules() {
	local moddir=$1 rel name f ext
	while IFS= read -r rel; do
		name=${rel##*/}
		name=${name%.ko}
		mod_builtin[${name//-/_}]=1
	done <"$moddir/modules.builtin"
	while IFS= read -r rel; do
		name=${rel##*/}
		name=${name%.ko}
		for ext in "" .xz .zst .gz; do
			f=$moddir/$rel$ext
			if [[ -f $f ]]; then
				mod_file[${name//-/_}]=$f
				break
			fi
		done
	done <"$moddir/modules.order"
}

# Print a module file uncompressed.
module_cat() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -dcq "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}

# Depth first: dependencies enter mod_order before the module itself.
add_module() {
	local name=${1//-/_} deps dep
	local -a list
	[[ -n ${mod_builtin[$name]:-} || -n ${mod_seen[$name]:-} ]] && return 0
	[[ -n ${mod_file[$name]:-} ]] || return 1
	mod_seen[$name]=1
	deps=$(module_cat "${mod_file[$name]}" | tr '\0' '\n' | sed -n 's/^depends=//p')
	IFS=, read -ra list <<<"$deps"
	for dep in "${list[@]}"; do
		add_module "$dep" || die "$name needs $dep, which $pkg lacks"
	done
	mod_order+=("$name")
}

# The guest's PID 1 (busybox ash): modules, mounts, then the command in a
# chroot of the host's root. It stays PID 1 so that it can report and power
# off whatever the command does.
write_init() {
	cat >"$1" <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
. /umk.conf

halt() {
	echo "umk-init: $*"
	sync
	poweroff -f
}

while read -r m; do
	insmod "/lib/modules/$m.ko" || echo "umk-init: insmod $m failed"
done </modules.list

mkdir -p /lower /newroot /scratch /results
# The read-only root: the host's tree does not change under a run, so the
# page cache may keep what it read (cache=loose), which makes exec and
# shared libraries fast.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower ||
	halt "cannot mount the host root (9p)"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results ||
	halt "cannot mount the results share (9p)"
mount -t ext4 /dev/vda /scratch || halt "cannot mount the scratch disk"
mkdir -p /scratch/upper /scratch/work /scratch/tmp
chmod 1777 /scratch/tmp

root=ro
if [ "$UMK_ROOT_MODE" = overlay ]; then
	if mount -t overlay overlay \
		-o lowerdir=/lower,upperdir=/scratch/upper,workdir=/scratch/work /newroot; then
		root=overlay
	else
		echo "umk-init: overlay over 9p refused: the root stays read-only"
	fi
fi
[ $root = ro ] && mount --bind /lower /newroot
echo "$root" >/results/root_mode

if [ "$UMK_SYSTEMD" = 1 ]; then
	[ $root = overlay ] || halt "--systemd needs the overlay root"
	# What an initrd hands over: /dev, /proc, /sys and /run mounted, the
	# units of this run in /run/systemd/system (the runtime unit
	# directory: nothing is written to the overlay's /etc).
	mount -t tmpfs -o mode=755 tmpfs /newroot/run
	mkdir -p /newroot/run/umk /newroot/run/host-tmp /newroot/run/systemd/system
	mount --bind /lower/tmp /newroot/run/host-tmp
	mount --bind /scratch/tmp /newroot/tmp
	mount --move /results /newroot/run/umk
	# The host may be a container: its /.dockerenv would make systemd
	# believe it runs in one (and ignore the kernel command line).
	rm -f /newroot/.dockerenv /newroot/run/.containerenv
	cp -r /newroot/run/umk/units/. /newroot/run/systemd/system/ ||
		halt "no units to boot into"
	mount --move /dev /newroot/dev
	mount --move /proc /newroot/proc
	mount --move /sys /newroot/sys
	exec switch_root /newroot /lib/systemd/systemd
fi

mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
# what udev or systemd would add to a devtmpfs (bash needs /dev/fd)
ln -s /proc/self/fd /newroot/dev/fd
ln -s /proc/self/fd/0 /newroot/dev/stdin
ln -s /proc/self/fd/1 /newroot/dev/stdout
ln -s /proc/self/fd/2 /newroot/dev/stderr
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o mode=620,ptmxmode=666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t tmpfs -o mode=755 tmpfs /newroot/run
mkdir -p /newroot/run/lock /newroot/run/umk /newroot/run/host-tmp
# the guest's /tmp is fresh; the host's stays readable for scripts kept there
mount --bind /lower/tmp /newroot/run/host-tmp
mount --bind /scratch/tmp /newroot/tmp
mount --bind /results /newroot/run/umk

chroot /newroot /bin/bash /run/umk/stage2.sh
sync
umount /newroot/run/umk /results 2>/dev/null
poweroff -f
EOF
}

# Runs inside the chroot (the host's bash): reports the kernel and its
# features, raises ctest timeouts, runs the command with a timeout and
# leaves its status and output on the results share.
write_stage2() {
	cat >"$1" <<'EOF'
#!/bin/bash
set -u
res=/run/umk
. "$res/config.sh"
up() { cut -d' ' -f1 /proc/uptime; }

t_boot=$(up)
echo "$t_boot" >"$res/boot_s"
uname -r >"$res/kernel"
echo "umk: kernel $(uname -r) $(uname -v), root $(cat "$res/root_mode"), up ${t_boot}s"

# The daemon's own view of the kernel: its first info line.
probe_features() {
	local d=$UMK_BUILD/daemon/umirrord log=/tmp/umk-probe.log pid i
	[[ -x $d ]] || return 0
	"$d" --socket /tmp/umk-probe.sock >"$log" 2>&1 &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q -e listening -e error "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	sed -n 's/^umirrord: info: kernel: //p' "$log" | head -n 1 >"$res/features"
	[[ -s $res/features ]] || { echo "(umirrord did not report:)"; cat "$log"; } >"$res/features"
	echo "umk: features: $(head -n 1 "$res/features")"
}

# TCG runs CPU-bound work 10-20x slower: multiply each test's TIMEOUT in
# the build's CTestTestfile.cmake files (ctest --timeout only sets the
# default for tests that have none). The host's files stay untouched: the
# overlay takes the change, a read-only root gets bind-mounted copies.
scale_ctest_timeouts() {
	local f n=0
	[[ $UMK_TIMEOUT_SCALE != 1 ]] || return 0
	mkdir -p /tmp/umk-ctest
	while IFS= read -r -d '' f; do
		n=$((n + 1))
		UMK_S=$UMK_TIMEOUT_SCALE perl -pe \
			's/\bTIMEOUT "(\d+(?:\.\d+)?)"/sprintf(q{TIMEOUT "%d"}, $1 * $ENV{UMK_S})/ge' \
			"$f" >"/tmp/umk-ctest/$n"
		if [[ $UMK_ROOT_MODE_REAL == overlay ]]; then
			cat "/tmp/umk-ctest/$n" >"$f"
		else
			mount --bind "/tmp/umk-ctest/$n" "$f"
		fi
	done < <(find "$UMK_BUILD" -name CTestTestfile.cmake -print0)
	echo "umk: ctest timeouts x$UMK_TIMEOUT_SCALE in $n files"
}

# ctest writes BUILD/Testing/Temporary/LastTest.log and refuses to run when
# it cannot: a read-only root gets a scratch directory there.
writable_testing_dir() {
	[[ $UMK_ROOT_MODE_REAL != overlay && -d $UMK_BUILD/Testing ]] || return 0
	mkdir -p /tmp/umk-testing
	cp -a "$UMK_BUILD/Testing/." /tmp/umk-testing/
	mount --bind /tmp/umk-testing "$UMK_BUILD/Testing"
}

UMK_ROOT_MODE_REAL=$(cat "$res/root_mode")
if [[ -n $UMK_BUILD ]]; then
	probe_features
	scale_ctest_timeouts
	writable_testing_dir
fi

t_start=$(up)
echo "umk: running: $(cat "$res/cmd.txt")"
{
	cd "$UMK_WORKDIR" &&
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TMPDIR=/tmp LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root \
		SHELL=/bin/bash UMIRROR_TEST_TIMEOUT_SCALE="$UMK_TIMEOUT_SCALE" "${UMK_ENV[@]}" \
		timeout -k 10 "$UMK_CMD_TIMEOUT" "${UMK_CMD[@]}" </dev/null
	echo $? >"$res/status.tmp"
} 2>&1 | tee "$res/output.log"
t_end=$(up)
echo "$t_start $t_end" | awk '{printf "%.1f\n", $2 - $1}' >"$res/command_s"
dmesg >"$res/dmesg.log" 2>&1
[[ $UMK_SYSTEMD == 1 ]] && journalctl -b -o short-monotonic --no-pager >"$res/journal.log" 2>&1
sync
mv "$res/status.tmp" "$res/status"
echo "umk: exit $(cat "$res/status") after $(cat "$res/command_s")s"
EOF
}

# The command and settings, as bash source for stage 2.
write_config() {
	local cmd_timeout=$((timeout_s > 120 ? timeout_s - 60 : timeout_s / 2))
	{
		printf 'UMK_BUILD=%q\n' "$build"
		printf 'UMK_WORKDIR=%q\n' "$workdir"
		printf 'UMK_TIMEOUT_SCALE=%q\n' "$scale"
		printf 'UMK_SYSTEMD=%q\n' "$systemd"
		printf 'UMK_CMD_TIMEOUT=%q\n' "$cmd_timeout"
		printf 'UMK_CMD=('
		printf '%q ' "${command_argv[@]}"
		printf ')\nUMK_ENV=('
		[[ ${#guest_env[@]} -gt 0 ]] && printf '%q ' "${guest_env[@]}"
		printf ')\n'
	} >"$1/config.sh"
	echo "${command_argv[*]}" >"$1/cmd.txt"
}

# --systemd: the units the guest's systemd boots into (the init copies
# them into /run/systemd/system). umk.target is basic.target, i.e. sysinit
# (journald, tmpfiles, sysusers), sockets, timers and paths of the host's
# userland, without multi-user.target's services (getty, the host's
# daemons); the command's unit runs after it and powers off whatever the
# command does. A boot that does not reach basic.target powers off after
# half the overall timeout instead of waiting for the host's limit.
write_units() {
	mkdir -p "$1/basic.target.d"
	cat >"$1/umk.target" <<'EOF'
[Unit]
Description=umirror kernel matrix run
Requires=basic.target
Wants=umk-run.service
After=basic.target
EOF
	cat >"$1/basic.target.d/umk.conf" <<EOF
[Unit]
JobTimeoutSec=$((timeout_s / 2))
JobTimeoutAction=poweroff-force
EOF
	cat >"$1/umk-run.service" <<'EOF'
[Unit]
Description=umirror kernel matrix command
After=basic.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/bash /run/umk/stage2.sh
StandardInput=null
StandardOutput=journal+console
StandardError=inherit
TimeoutStartSec=infinity
EOF
}

build_initramfs() {
	local stage=$run/initramfs m
	mkdir -p "$stage"/{bin,dev,proc,sys,lib/modules}
	cp /bin/busybox "$stage/bin/busybox"
	for m in $(/bin/busybox --list); do
		[[ $m == busybox ]] || ln -sf busybox "$stage/bin/$m"
	done
	mknod -m 600 "$stage/dev/console" c 5 1
	index_modules "$tree/lib/modules/$kver"
	for m in "${REQUIRED_MODULES[@]}"; do
		add_module "$m" || skip "$pkg has no module $m"
	done
	for m in "${OPTIONAL_MODULES[@]}"; do
		add_module "$m" || say "note: $pkg has no module $m"
	done
	for m in "${mod_order[@]}"; do
		module_cat "${mod_file[$m]}" >"$stage/lib/modules/$m.ko"
		echo "$m"
	done >"$stage/modules.list"
	printf 'UMK_ROOT_MODE=%s\nUMK_SYSTEMD=%s\n' "$root_mode" "$systemd" >"$stage/umk.conf"
	write_init "$stage/init"
	chmod 755 "$stage/init"
	(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$run/initramfs.gz"
}

# ---- the VM ----------------------------------------------------------------

qemu_argv() {
	# hugepages=8: a pool of 2 MiB pages reserved at boot, so that the
	# hugetlb tests run in the VM as on a workstation that set one up
	# (test_hugetlb_wp needs two; the checker raises it as it needs)
	local cmdline="console=ttyS0 panic=-1 loglevel=4 rdinit=/init hugepages=8 $append"
	[[ $systemd == 1 ]] && cmdline+=" systemd.unit=umk.target"
	local mem_mib
	mem_mib=$(($(numfmt --from=iec "$mem") / 1048576))
	qargs=(qemu-system-x86_64 -nodefaults -no-user-config -no-reboot
		-display none -vga none -serial stdio
		-smp "$smp" -m "${mem_mib}M"
		-kernel "$vmlinuz" -initrd "$run/initramfs.gz" -append "$cmdline"
		-fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
		-device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"
		-fsdev "local,id=results,path=$run/res,security_model=none"
		-device "virtio-9p-pci,fsdev=results,mount_tag=results"
		-drive "file=$run/scratch.img,format=raw,if=virtio,cache=unsafe")
	if [[ $accel == kvm ]]; then
		# QEMU 7.2 aborts on a nested host that refuses
		# IA32_ARCH_CAPABILITIES ("failed to set MSR 0x10a")
		qargs+=(-accel kvm -cpu "host,-arch-capabilities")
	else
		qargs+=(-accel tcg -cpu max)
	fi
	# Two nodes, each with half the CPUs and half the memory, so that
	# per-page nodes and placement meet a real multi-node topology.
	if [[ $numa2 == 1 ]]; then
		local half=$((mem_mib / 2))
		[[ $((smp % 2)) == 0 && $((mem_mib % 2)) == 0 ]] || die "--numa2 needs an even --smp and -m"
		qargs+=(-object "memory-backend-ram,id=mem0,size=${half}M"
			-object "memory-backend-ram,id=mem1,size=${half}M"
			-numa "node,nodeid=0,cpus=0-$((smp / 2 - 1)),memdev=mem0"
			-numa "node,nodeid=1,cpus=$((smp / 2))-$((smp - 1)),memdev=mem1")
		# one socket per node: CPUs sharing a cache across nodes make
		# the kernel warn (topology_sane) at boot
		qargs+=(-smp "$smp,sockets=2,cores=$((smp / 2)),threads=1")
	fi
	qargs+=(-pidfile "$run/qemu.pid" "${qemu_extra[@]}")
}

stop_vm() {
	local pid
	pid=$(cat "$run/qemu.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
}

cleanup() {
	[[ -n ${run:-} && -d $run ]] || return 0
	rm -f "$run/scratch.img"
	rm -rf "$run/initramfs" "$run/initramfs.gz"
	if [[ -n $out ]]; then
		mkdir -p "$out"
		cp -a "$run/res/." "$out/"
		[[ -f $run/console.log ]] && cp "$run/console.log" "$out/"
	fi
	rm -rf "$run"
}

main() {
	parse_args "$@"
	check_host_tools
	prepare_kernel
	run=$(mktemp -d /tmp/umk-run.XXXXXX)
	trap cleanup EXIT
	mkdir -p "$run/res"
	chmod 0777 "$run/res"
	build_initramfs
	truncate -s "$disk_size" "$run/scratch.img"
	mkfs.ext4 -q -F -E nodiscard "$run/scratch.img"
	write_stage2 "$run/res/stage2.sh"
	write_config "$run/res"
	[[ $systemd == 1 ]] && write_units "$run/res/units"
	echo "$pkg $pkg_version" >"$run/res/package"
	qemu_argv
	say "$pkg ($pkg_version), kernel $kver, accel $accel, ${mem} RAM, $smp CPUs$([[ $numa2 == 1 ]] && echo ', 2 NUMA nodes')$([[ $systemd == 1 ]] && echo ', systemd as PID 1'), timeout ${timeout_s}s"

	local t0 rc=0 status
	t0=$(date +%s)
	# timeout(1) runs QEMU in a process group of its own, which neither
	# ^C nor a kill of ours reaches: the VM is stopped by its pid. The
	# pipeline runs in the background so that wait returns at a signal.
	# (sed -u, not tr: the console is streamed as it comes.)
	trap 'stop_vm; exit 130' INT
	trap 'stop_vm; exit 143' TERM
	if [[ $quiet == 1 ]]; then
		(timeout -k 10 "$timeout_s" "${qargs[@]}" </dev/null 2>&1 | sed -u 's/\r//g' >"$run/console.log") &
	else
		(timeout -k 10 "$timeout_s" "${qargs[@]}" </dev/null 2>&1 | sed -u 's/\r//g' | tee "$run/console.log") &
	fi
	wait $! || rc=$?
	trap - INT TERM
	local wall=$(($(date +%s) - t0))
	# quiet and nothing kept: the command's output is all there is to see
	[[ $quiet == 1 && -z $out && -f $run/res/output.log ]] && cat "$run/res/output.log"

	say "package: $pkg $pkg_version"
	say "kernel: $kver$([[ -f $run/res/root_mode ]] && echo ", root $(cat "$run/res/root_mode")")"
	[[ -s $run/res/features ]] && say "features: $(head -n 1 "$run/res/features")"
	if [[ -f $run/res/status ]]; then
		status=$(cat "$run/res/status")
		say "boot $(cat "$run/res/boot_s")s, command $(cat "$run/res/command_s")s, wall ${wall}s, exit $status"
		grep -E '(WARNING|BUG|Oops|general protection):? ' "$run/res/dmesg.log" >&2 &&
			say "the guest kernel logged the warnings above (dmesg.log)"
		return "$status"
	fi
	if [[ $rc == 124 ]]; then
		say "timeout: the VM ran longer than ${timeout_s}s"
		return 124
	fi
	say "the VM ended without a status (qemu exit $rc); console tail:"
	tail -n 30 "$run/console.log" >&2 || true
	return 125
}

main "$@"
