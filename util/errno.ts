// System errors (errno codes) told in words, with what to do: the one table that the CLI's error path
// (scripts/cli.ts describeError) and the output preflight (pipeline/preflight.ts) read, so that a raw
// "ELOOP: too many symbolic links encountered, stat '...'" never reaches the user as it is.

interface Errno {
  cause: string;
  todo: string;
}

export const ERRNO: Record<string, Errno> = {
  ENOSPC: { cause: 'no space left on the device', todo: 'free some space or choose another location, then rerun the same command to resume' },
  EDQUOT: { cause: 'disk quota exceeded', todo: 'free some space within your quota or choose another location, then rerun the same command to resume' },
  EROFS: { cause: 'the file system is read-only', todo: 'choose a location on a writable file system (e.g. --out DIR), or remount it read-write' },
  EACCES: { cause: 'permission denied', todo: 'check the permissions of the path or choose another location' },
  EPERM: { cause: 'operation not permitted', todo: 'check the permissions of the path or choose another location' },
  EMFILE: { cause: 'too many open files', todo: 'raise the limit (ulimit -n) and rerun the same command' },
  ELOOP: { cause: 'too many levels of symbolic links (a link that points back to itself)', todo: 'fix or remove the symbolic link loop in the path' },
  ENAMETOOLONG: { cause: 'the file name is too long', todo: 'use a shorter name (at most 255 bytes per path component)' },
  EISDIR: { cause: 'it is a directory, not a file', todo: 'give the path of a file' },
  ENOTDIR: { cause: 'a part of the path is a file, not a directory', todo: 'check the path' },
  ENOENT: { cause: 'no such file or directory', todo: 'check the path' },
};

/** The words for an errno code, or undefined for a code the table does not know. */
export const errnoCause = (code: string | undefined): string | undefined => (code ? ERRNO[code]?.cause : undefined);

/**
 * The message for a system error: its cause in words, the path it concerns and what to do. Node's own message
 * ("ELOOP: too many symbolic links encountered, stat '/x'") is replaced when the error carries its path.
 */
export function describeErrno(e: NodeJS.ErrnoException & { dest?: string }): string | undefined {
  const known = e.code ? ERRNO[e.code] : undefined;
  if (!known) return undefined;
  if (e.message.includes(known.cause)) return e.message; // already told in words by one of our checks
  if (!e.path) return `${known.cause} (${e.message}); ${known.todo}`;
  const target = e.dest ? `${e.path} -> ${e.dest}` : e.path;
  return `${known.cause}: ${e.syscall ?? 'access'} ${target} (${e.code}); ${known.todo}`;
}
