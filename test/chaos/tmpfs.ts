/**
 * A real small file system for full-disk tests: a tmpfs of a fixed size mounted on a fresh
 * temp folder (`mount -t tmpfs -o size=<bytes>`), so that writes past the size fail with
 * ENOSPC exactly as on a full eMMC. Needs root (CAP_SYS_ADMIN), as CI and the dev machines
 * run; anywhere else it throws with the reason instead of skipping. `fill()` takes free space
 * with a filler file and `release()` gives it back (`resize()` remounts it larger or
 * smaller), so a test decides when the disk is full and when it has room again. `unmount()` is idempotent and removes the folder.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  dir: string;
  /** Bytes free now. */
  free(): number;
  /** Writes a filler file that leaves about `leaveFree` bytes free. */
  fill(leaveFree: number): void;
  /** Deletes the filler file. */
  release(): void;
  /** Grows (or shrinks, down to what is used) the file system, mounted as it is. */
  resize(sizeBytes: number): void;
  unmount(): void;
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), "plc2mqtt-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755`, "tmpfs", dir], {
      stdio: "pipe",
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
    throw new Error(
      `cannot mount a ${sizeBytes}-byte tmpfs on ${dir} (${why}): full-disk tests need root (CAP_SYS_ADMIN)`,
    );
  }
  const filler = join(dir, "filler");
  let mounted = true;
  const free = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    free,
    fill(leaveFree) {
      const fd = openSync(filler, "a");
      const chunk = Buffer.alloc(64 * 1024);
      try {
        while (free() > leaveFree) {
          const n = Math.min(chunk.length, free() - leaveFree);
          if (n <= 0) break;
          writeSync(fd, chunk, 0, n);
        }
      } finally {
        closeSync(fd);
      }
    },
    release() {
      rmSync(filler, { force: true });
    },
    resize(size) {
      execFileSync("mount", ["-o", `remount,size=${size}`, dir], { stdio: "pipe" });
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      execFileSync("umount", [dir], { stdio: "pipe" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
