/**
 * The guest software `vgic linux` boots: Debian bookworm's arm64 cloud kernel and busybox-static,
 * fetched once with apt into a cache directory and kept there as two plain files (an arm64 Image
 * and the static busybox binary) plus a stamp.
 *
 * apt runs with a private state of its own (package lists, archive cache, an empty dpkg status,
 * a sources.list naming only bookworm main, no preferences), so the host's dpkg configuration is
 * neither read for packages nor changed: no `dpkg --add-architecture`, nothing installed. The
 * host only needs apt-get, dpkg-deb and Debian's archive keyring (any Debian or Ubuntu has them).
 *
 * The kernel comes from the metapackage `linux-image-cloud-arm64`, resolved with apt-cache to the
 * real `linux-image-<release>-cloud-arm64` (the metapackage holds no files). The cloud flavour is
 * used because it boots fastest (fewest drivers) and has everything QEMU virt needs built in:
 * PL011 console, GICv3 + ITS, arch timer, PSCI, initramfs (gzip), devtmpfs (not auto-mounted).
 *
 * Who calls: `vgic linux` (src/cli/linux.ts) and the Linux boot benchmark (linux-bench.ts).
 */

import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface LinuxAssets {
  /** Path of an uncompressed arm64 Linux Image. */
  readonly kernel: string;
  /** Path of busybox-static's binary (arm64, static). */
  readonly busybox: string;
  /** The kernel release, as `uname -r` prints it (e.g. 6.1.0-50-cloud-arm64). */
  readonly version: string;
  /** Debian package versions, for reports: kernel package and busybox-static. */
  readonly packages: { readonly kernel: string; readonly busybox: string };
}

export interface EnsureLinuxAssetsOptions {
  /** Default: $XDG_CACHE_HOME/vgic/linux, else ~/.cache/vgic/linux. */
  readonly cacheDir?: string;
  /** Progress lines (what is being fetched); nothing is printed when absent. */
  readonly log?: (line: string) => void;
  /** Debian mirror. Default http://deb.debian.org/debian. */
  readonly mirror?: string;
  /** Debian suite. Default bookworm (the kernel the machine is measured with). */
  readonly suite?: string;
}

/** The metapackage that always points to the current cloud kernel of the suite. */
export const KERNEL_METAPACKAGE = 'linux-image-cloud-arm64';
export const BUSYBOX_PACKAGE = 'busybox-static';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const DEFAULT_SUITE = 'bookworm';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const STAMP = 'assets.json';
/** Bumped when the cache's layout changes, so an old stamp is not trusted. */
const STAMP_FORMAT = 1;

interface Stamp {
  format: number;
  suite: string;
  kernel: string;
  busybox: string;
  version: string;
  packages: { kernel: string; busybox: string };
  sizes: { kernel: number; busybox: number };
}

export class LinuxAssetsError extends Error {
  override name = 'LinuxAssetsError';
}

export function defaultLinuxCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg?.startsWith('/') ? xdg : join(homedir(), '.cache');
  return join(base, 'vgic', 'linux');
}

/**
 * The kernel and busybox, from the cache when its stamp says they are there (no process is
 * started, no network: a stat or two), otherwise fetched with apt and extracted.
 */
export async function ensureLinuxAssets(opts: EnsureLinuxAssetsOptions = {}): Promise<LinuxAssets> {
  const cacheDir = opts.cacheDir ?? defaultLinuxCacheDir();
  const suite = opts.suite ?? DEFAULT_SUITE;
  const cached = readStamp(cacheDir, suite);
  if (cached) return cached;
  return fetchAssets(cacheDir, suite, opts.mirror ?? DEFAULT_MIRROR, opts.log ?? (() => {}));
}

/** The assets if the cache already holds them, else undefined: no process, no network, no writes. */
export function cachedLinuxAssets(
  opts: Pick<EnsureLinuxAssetsOptions, 'cacheDir' | 'suite'> = {},
): LinuxAssets | undefined {
  return readStamp(opts.cacheDir ?? defaultLinuxCacheDir(), opts.suite ?? DEFAULT_SUITE);
}

/** The assets the stamp describes, if the stamp is current and the files are still as it says. */
function readStamp(cacheDir: string, suite: string): LinuxAssets | undefined {
  let s: Stamp;
  try {
    s = JSON.parse(readFileSync(join(cacheDir, STAMP), 'utf8')) as Stamp;
  } catch {
    return undefined;
  }
  if (s.format !== STAMP_FORMAT || s.suite !== suite) return undefined;
  const kernel = join(cacheDir, s.kernel);
  const busybox = join(cacheDir, s.busybox);
  try {
    // Sizes catch a truncated copy (an interrupted cp, a full disk) without hashing 30 MB.
    if (statSync(kernel).size !== s.sizes.kernel || statSync(busybox).size !== s.sizes.busybox)
      return undefined;
  } catch {
    return undefined;
  }
  return { kernel, busybox, version: s.version, packages: s.packages };
}

interface Run {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, what: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd,
        maxBuffer: 64 * 1024 * 1024,
        // C locale: apt-cache's output is parsed; noninteractive: apt must never prompt.
        env: { ...process.env, LC_ALL: 'C', LANG: 'C', DEBIAN_FRONTEND: 'noninteractive' },
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT') {
          reject(
            new LinuxAssetsError(
              `${what}: ${cmd} not found. vgic linux fetches Debian's arm64 kernel and busybox-static ` +
                `with apt (apt-get, apt-cache, dpkg-deb): run it on Debian or Ubuntu, or fetch the ` +
                `assets there once and copy the cache directory over.`,
            ),
          );
          return;
        }
        const tail = `${stderr}`.trim().split('\n').slice(-6).join('\n  ');
        reject(new LinuxAssetsError(`${what} failed (${cmd} ${args.slice(-2).join(' ')}):\n  ${tail}`));
      },
    );
  });
}

async function fetchAssets(
  cacheDir: string,
  suite: string,
  mirror: string,
  log: (l: string) => void,
): Promise<LinuxAssets> {
  if (!existsSync(KEYRING)) {
    throw new LinuxAssetsError(
      `${KEYRING} is missing: apt cannot check Debian's archive signatures. ` +
        'Install it with: apt-get install debian-archive-keyring',
    );
  }
  // Everything is built in a work directory and moved into place at the end, so an interrupted
  // fetch never leaves a stamp over half a cache, and two concurrent fetches do not mix files.
  mkdirSync(cacheDir, { recursive: true });
  const work = join(cacheDir, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  try {
    const apt = aptOptions(work, suite, mirror);
    log(`vgic linux: fetching Debian ${suite}'s arm64 package lists (into ${cacheDir}, once)`);
    const update = await run(
      'apt-get',
      [...apt, '-q', 'update'],
      work,
      `apt-get update (network: ${mirror})`,
    );
    // apt-get update exits 0 when an index cannot be fetched ("W: Failed to fetch …, Some index
    // files failed to download"), so look for the index itself.
    if (!readdirSync(join(work, 'lists')).some((f) => f.includes('_binary-arm64_Packages'))) {
      const said = `${update.stdout}\n${update.stderr}`
        .split('\n')
        .filter((l) => /^(W|E|Err):/.test(l.trim()))
        .join('\n  ');
      throw new LinuxAssetsError(
        `could not download Debian's arm64 package lists from ${mirror} (no network, or a proxy is ` +
          `needed: set http_proxy, or Acquire::http::Proxy in /etc/apt/apt.conf.d). apt-get said:\n  ${said}`,
      );
    }

    const dep = await run('apt-cache', [...apt, 'depends', KERNEL_METAPACKAGE], work, 'apt-cache depends');
    const m = /^\s*Depends:\s*(linux-image-(\d\S*-arm64))\s*$/m.exec(dep.stdout);
    if (!m) {
      throw new LinuxAssetsError(
        `${KERNEL_METAPACKAGE} in ${suite} depends on no linux-image-*-arm64 package; apt-cache said:\n${dep.stdout}`,
      );
    }
    const [, kernelPkg, release] = m;
    log(`vgic linux: downloading ${kernelPkg} and ${BUSYBOX_PACKAGE}`);
    const debs = join(work, 'debs');
    await run('apt-get', [...apt, '-q', 'download', kernelPkg, BUSYBOX_PACKAGE], debs, 'apt-get download');

    const files = readdirSync(debs).filter((f) => f.endsWith('.deb'));
    const kernelDeb = files.find((f) => f.startsWith(`${kernelPkg}_`));
    const busyboxDeb = files.find((f) => f.startsWith(`${BUSYBOX_PACKAGE}_`));
    if (!kernelDeb || !busyboxDeb) {
      throw new LinuxAssetsError(`apt-get download left ${files.join(', ') || 'nothing'} in ${debs}`);
    }
    const root = join(work, 'root');
    for (const deb of [kernelDeb, busyboxDeb]) {
      await run('dpkg-deb', ['-x', join(debs, deb), root], work, `extracting ${deb}`);
    }

    const vmlinuz = join(root, 'boot', `vmlinuz-${release}`);
    if (!existsSync(vmlinuz)) throw new LinuxAssetsError(`${kernelDeb} holds no boot/vmlinuz-${release}`);
    let image: Uint8Array = readFileSync(vmlinuz);
    // Debian's arm64 vmlinuz was gzip'd in older releases and is a plain Image in bookworm's;
    // store the plain Image either way, since QEMU and the machine both load it directly.
    if (image[0] === 0x1f && image[1] === 0x8b) image = gunzipSync(image);
    if (!(image[0x38] === 0x41 && image[0x39] === 0x52 && image[0x3a] === 0x4d && image[0x3b] === 0x64)) {
      throw new LinuxAssetsError(`${vmlinuz} is not an arm64 Linux Image (no "ARM\\x64" magic at 0x38)`);
    }
    const busyboxBin = readFileSync(join(root, 'bin', 'busybox'));

    const kernelName = `Image-${release}`;
    const stamp: Stamp = {
      format: STAMP_FORMAT,
      suite,
      kernel: kernelName,
      busybox: 'busybox',
      version: release,
      packages: { kernel: debVersion(kernelDeb), busybox: debVersion(busyboxDeb) },
      sizes: { kernel: image.length, busybox: busyboxBin.length },
    };
    writeFileSync(join(work, kernelName), image);
    writeFileSync(join(work, 'busybox'), busyboxBin, { mode: 0o755 });
    renameSync(join(work, kernelName), join(cacheDir, kernelName));
    renameSync(join(work, 'busybox'), join(cacheDir, 'busybox'));
    writeFileSync(join(work, STAMP), `${JSON.stringify(stamp, null, 2)}\n`);
    renameSync(join(work, STAMP), join(cacheDir, STAMP));
    log(`vgic linux: kernel ${release} (${stamp.packages.kernel}), busybox ${stamp.packages.busybox}`);
  } finally {
    // The lists (18 MB), the .debs (22 MB) and the kernel modules (67 MB) are not needed again.
    rmSync(work, { recursive: true, force: true });
  }
  const got = readStamp(cacheDir, suite);
  if (!got) throw new LinuxAssetsError(`the cache in ${cacheDir} did not verify after fetching`);
  return got;
}

/**
 * apt options for a private state under `dir`: every path apt would otherwise take from /etc/apt
 * or /var/lib/{apt,dpkg} points into `dir`. The status file is empty, so apt sees nothing
 * installed; arm64 is both the native and the only architecture, so `download NAME` fetches the
 * arm64 package without `:arm64` and without `dpkg --add-architecture`. The host's apt.conf.d is
 * still read, which keeps proxy settings working.
 */
export function aptOptions(dir: string, suite: string, mirror: string): string[] {
  for (const d of [
    'lists/partial',
    'cache/archives/partial',
    'state',
    'sources.list.d',
    'preferences.d',
    'debs',
  ]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  writeFileSync(join(dir, 'status'), '');
  writeFileSync(join(dir, 'sources.list'), `deb [signed-by=${KEYRING}] ${mirror} ${suite} main\n`);
  const o: Record<string, string> = {
    'APT::Architecture': 'arm64',
    'APT::Architectures': 'arm64',
    'Dir::State': join(dir, 'state'),
    'Dir::State::Lists': join(dir, 'lists'),
    'Dir::State::status': join(dir, 'status'),
    'Dir::Cache': join(dir, 'cache'),
    'Dir::Etc::sourcelist': join(dir, 'sources.list'),
    // An empty directory: '-' is not special here (apt warns "Unable to read /etc/apt/-/").
    'Dir::Etc::sourceparts': join(dir, 'sources.list.d'),
    'Dir::Etc::preferences': join(dir, 'preferences'),
    'Dir::Etc::preferencesparts': join(dir, 'preferences.d'),
    'Acquire::Languages': 'none',
  };
  // As root, apt downloads as the _apt user, who cannot write into root's home (~/.cache):
  // apt would warn and fall back. Not root, apt does not switch users and ignores this.
  if (process.getuid?.() === 0) o['APT::Sandbox::User'] = 'root';
  return Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

/** The Debian version in a .deb's file name (NAME_VERSION_ARCH.deb, ':' escaped as %3a). */
function debVersion(file: string): string {
  return decodeURIComponent(file.split('_')[1] ?? '?');
}
