/**
 * MQTT topic filter matching (MQTT 5.0 section 4.7): `+` matches one level, a trailing `#`
 * matches the parent level and everything below, and wildcards in the first level never match
 * topics starting with `$` (broker topics such as $SYS).
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  const system = topic.startsWith("$");
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === "#") return !(i === 0 && system);
    if (i >= t.length) return false;
    if (level === "+") {
      if (i === 0 && system) return false;
      continue;
    }
    if (level !== t[i]) return false;
  }
  return f.length === t.length;
}
