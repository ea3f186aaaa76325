// Words for a bash command line that a user copies or a batch script runs.

/** `s` as one bash word: bare when it is plain, single-quoted otherwise. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_./=:+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
