# real.git (tests/real/git.py), run as `sh git.sh` in an empty directory:
# a repository built, rewritten, merged, packed and checked, with the
# identities and dates fixed so that the output is the same on every run
set -e
inputs=$(cd "$(dirname "$0")" && pwd)
export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Test GIT_AUTHOR_EMAIL=test@example.com GIT_COMMITTER_NAME=Test GIT_COMMITTER_EMAIL=test@example.com
export GIT_AUTHOR_DATE='2024-01-01T00:00:00 +0000' GIT_COMMITTER_DATE='2024-01-01T00:00:00 +0000'
mkdir -p home repo
cd repo
git init -q -b main .
# ~400 files in 20 directories, deterministic contents
awk -f "$inputs/git_tree.awk"
git add -A
git commit -q -m "initial import"
for c in 1 2 3 4 5; do
  for d in 0 3 7 11 19; do
    f="dir$d/file$((c * 3 % 20)).txt"
    sed -i "s/line $c /line $c changed in commit $c /" "$f"
    echo "appended by commit $c" >> "dir$d/file$c.txt"
  done
  mkdir -p "new$c" && seq 1 $((c * 200)) > "new$c/numbers.txt"
  git add -A
  git commit -q -m "commit $c: edit and add files"
done
git mv dir0 renamed0
git rm -q -r dir19
git commit -q -m "rename and remove"
git branch side HEAD~2
git checkout -q side
echo "side change" > side.txt
git add side.txt
git commit -q -m "side branch"
git checkout -q main
git merge -q --no-edit side
git log --stat --format='%H %an %s' 
git rev-parse HEAD HEAD~1 HEAD~3
git diff --stat HEAD~4 HEAD
git grep -c 'quick' | tail -5
git gc -q --aggressive
git fsck --full --no-progress
git count-objects -v | grep -E '^(count|in-pack|packs|garbage)'
git log --oneline | wc -l
git show HEAD~2:new2/numbers.txt | tail -3
git archive --format=tar HEAD | sha256sum
git blame -s dir3/file3.txt | head -5
