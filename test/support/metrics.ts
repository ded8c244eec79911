// Reading /metrics in tests: fetch an exposition and look samples up by their printed series.

/** GET `url`; the status and body, whatever the status. */
export async function scrape(url: string): Promise<{ status: number; contentType: string | null; text: string }> {
  const response = await fetch(url);
  return { status: response.status, contentType: response.headers.get('content-type'), text: await response.text() };
}

/**
 * Every sample of a Prometheus text exposition, keyed by its series as printed: `name` or
 * `name{label="value",...}` (labels in the order the exposition gives them).
 */
export function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    found.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return found;
}

/** The value of one series (see `samples`); throws naming it when the exposition lacks it. */
export function sample(text: string, series: string): number {
  const value = samples(text).get(series);
  if (value === undefined) throw new Error(`no sample ${series} in the exposition`);
  return value;
}
