#!/usr/bin/env bash
# The documentation stays documentation (issue 17, item 6): README.md and
# docs/*.md hold no measurement diaries ("Session N" headings: dated history
# goes to bench/RESULTS.md), point nowhere outside the repository, and every
# repository path they name exists. Needs no build.
. "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../.."

docs=(README.md docs/*.md bench/RESULTS.md)

# 1. No "Session N" sections in docs/ (README included): history is dated in
#    bench/RESULTS.md, not kept as sessions in a module's doc.
hits=$(grep -nE '^#{1,6} .*[Ss]ession [0-9]|Session [0-9]' README.md docs/*.md)
expect_eq "no 'Session N' section in README.md or docs/" "$hits" ""

# 2. Nothing points outside the repository: no ../ path, no absolute path
#    as a link target, nothing in the shared directory beside the repository
#    (the founding design and style are folded into docs/).
hits=$(grep -nE '\.\./|\]\(/|(^|[^A-Za-z0-9_])shared/' "${docs[@]}")
expect_eq "no link or path leaves the repository" "$hits" ""

# 3. Markdown links to repository files resolve (relative to the linking
#    file, as a Markdown viewer resolves them).
missing=""
for f in "${docs[@]}"; do
  dir=$(dirname "$f")
  while IFS= read -r target; do
    case "$target" in http://* | https://* | mailto:* | \#*) continue ;; esac
    path=${target%%#*}
    [ -n "$path" ] || continue
    [ -e "$dir/$path" ] || missing+="$f -> $target"$'\n'
  done < <(grep -oE '\]\([^) ]+\)' "$f" | sed -E 's/^\]\((.*)\)$/\1/')
done
expect_eq "markdown links resolve" "$missing" ""

# 4. Paths into the source tree that the docs name (`processor/rules.c`,
#    docs/index.md, tests/integration/queue_crash.sh...) exist, as a file,
#    a directory or the stem of one (`common/crypto` for crypto.[ch]). A name
#    followed by a glob or a placeholder (firehose/relay*, event.[ch],
#    lexicon/<id>.json) is a pattern, not a path, and is skipped.
tops=$(for d in */; do
  d=${d%/}
  case "$d" in build* | node_modules) continue ;; esac
  printf '%s|' "$d"
done)
tops=${tops%|}
# bench/RESULTS.md is history: a file it names may since have gone.
missing=""
for f in README.md docs/*.md; do
  while IFS= read -r hit; do
    next=${hit: -1}
    path=${hit%?}
    case "$next" in '*' | '{' | '[' | '<') continue ;; esac
    path=${path#?}              # the character before the path
    # `firehose/filter.{h,c}`, `common/crypto`: a file stem names its .c/.h
    [ -e "$path" ] || compgen -G "$path.*" >/dev/null || missing+="$f: $path"$'\n'
  done < <(grep -oE "(^|[^A-Za-z0-9_./-])($tops)/[A-Za-z0-9_./-]*[A-Za-z0-9_](.|$)" "$f" |
    sed -E 's/^([A-Za-z0-9_./-])/ \1/; s/[A-Za-z0-9_]$/& /')
done
expect_eq "repository paths named in the docs exist" "$missing" ""

# 5. bench/RESULTS.md is the home of measurement history; each module doc
#    says what it does before anything else (a title, then a paragraph).
check "bench/RESULTS.md exists" test -s bench/RESULTS.md
for f in docs/*.md; do
  first=$(grep -m1 -vE '^\s*$' "$f")
  case "$first" in '# '*) ok "$f opens with a title" ;; *) bad "$f opens with a title" "$first" ;; esac
done
finish
