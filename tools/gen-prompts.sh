#!/usr/bin/env bash
# Generates every shipped prompt: stdlib/prompts/*.wav and
# examples/flows/prompts/*.wav, as 8 kHz mono 16-bit PCM WAV, spoken by
# espeak-ng and converted, trimmed and normalised by sox (no dither, so the
# output is reproducible). Needs: espeak-ng, sox.
#
#   tools/gen-prompts.sh            # regenerate everything
#
# Naming scheme of the stdlib prompts (the runtime composes `say` and the
# message envelope from these; keep the names stable):
#   digit-0 … digit-9        say digits: one per digit
#   num-0 … num-19           say number: 0-19
#   num-20, num-30 … num-90  the tens ("twenty" …); 21 = num-20 + num-1
#   num-hundred, num-thousand, num-million, num-billion, num-minus
#                            342 = num-3 num-hundred num-40 num-2
#   day-mon … day-sun        weekday names
#   month-01 … month-12      month names
#   ord-1 … ord-31           ordinals ("first" … "thirty-first") for dates
#   time-oh                  "oh", as in 9:05 = num-9 time-oh num-5
#   time-oclock              "o'clock", as in 9:00 = num-9 time-oclock
#   time-am, time-pm         "a.m.", "p.m."
#   beep                     the record tone: 1000 Hz, 250 ms
#   env-*                    the message envelope (play_message envelope true):
#                            env-from [digits] env-received [date] env-at [time]
#   greet-*                  the default mailbox greeting, when the owner has
#                            recorded none: greet-ext [digits] greet-unavailable
#                            (or greet-busy) greet-leave
#   vm-*                     stdlib/mailbox.vflow (leave, collect, options)
#   att-*                    stdlib/attendant.vflow
# Example prompts (examples/flows/prompts/) use a prefix per example file:
#   rcp- reception, dep- departments, q- queue, sv- survey, ov- front_desk,
#   ps- personal, and hold-music (a generated tune, not speech).

set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
std="$root/stdlib/prompts"
ex="$root/examples/flows/prompts"
mkdir -p "$std" "$ex"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

VOICE="${VOICE:-en-us}"
SPEED="${SPEED:-155}"

# speak DIR NAME TEXT: one spoken prompt, silence trimmed at both ends.
speak() {
  local dir="$1" name="$2" text="$3"
  espeak-ng -v "$VOICE" -s "$SPEED" -w "$tmp/raw.wav" -- "$text"
  sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$name.wav" \
    highpass 200 \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
    norm -3
}

# table DIR: reads `name|text` lines from stdin.
table() {
  local dir="$1" name text
  while IFS='|' read -r name text; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    speak "$dir" "$name" "$text"
  done
}

# ---- say: digits, numbers, days, months, ordinals, time words ------------
ones=(zero one two three four five six seven eight nine ten eleven twelve thirteen
      fourteen fifteen sixteen seventeen eighteen nineteen)
tens=([2]=twenty [3]=thirty [4]=forty [5]=fifty [6]=sixty [7]=seventy [8]=eighty [9]=ninety)
for i in {0..9}; do speak "$std" "digit-$i" "${ones[$i]}"; done
for i in {0..19}; do speak "$std" "num-$i" "${ones[$i]}"; done
for t in {2..9}; do speak "$std" "num-${t}0" "${tens[$t]}"; done
table "$std" <<'T'
num-hundred|hundred
num-thousand|thousand
num-million|million
num-billion|billion
num-minus|minus
time-oh|oh
time-oclock|o'clock
time-am|A M
time-pm|P M
day-mon|Monday
day-tue|Tuesday
day-wed|Wednesday
day-thu|Thursday
day-fri|Friday
day-sat|Saturday
day-sun|Sunday
month-01|January
month-02|February
month-03|March
month-04|April
month-05|May
month-06|June
month-07|July
month-08|August
month-09|September
month-10|October
month-11|November
month-12|December
T
ord=(zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh
     twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth
     nineteenth twentieth twenty-first twenty-second twenty-third twenty-fourth
     twenty-fifth twenty-sixth twenty-seventh twenty-eighth twenty-ninth thirtieth
     thirty-first)
for i in {1..31}; do speak "$std" "ord-$i" "${ord[$i]}"; done

# The record tone: 1000 Hz, 250 ms, with 10 ms fades so it does not click.
sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$std/beep.wav" synth 0.25 sine 1000 fade 0.01 0.25 0.01 gain -6

# ---- envelope and default greeting (runtime) ------------------------------
table "$std" <<'T'
env-from|Message from
env-unknown|an unknown caller
env-received|received
env-at|at
env-today|today
env-yesterday|yesterday
env-urgent|Urgent message.
greet-ext|The person at extension
greet-unavailable|is not available.
greet-busy|is on another call.
greet-leave|Please leave a message after the tone. Press pound when you have finished.
T

# ---- stdlib/mailbox.vflow --------------------------------------------------
table "$std" <<'T'
vm-msg-recorded|Thank you. Your message has been recorded.
vm-msg-review|To keep your message, press 1. To listen to it, press 2. To record it again, press 3.
vm-not-recorded|No message was recorded.
vm-goodbye|Goodbye.
vm-enter-mailbox|Please enter your mailbox number, then press pound.
vm-enter-pin|Please enter your PIN, then press pound.
vm-pin-incorrect|That PIN is not correct.
vm-locked|This mailbox is locked after too many wrong PINs. Please try again later.
vm-you-have|You have
vm-new-and|new, and
vm-saved-messages|saved messages.
vm-no-messages|You have no messages.
vm-main-menu|To listen to your messages, press 1. For mailbox options, press 0. For help, press star. To exit, press pound.
vm-main-help|Press 1 to hear your new messages, then your saved ones. While a message plays, or after it, press 4 for the previous message, 5 to repeat it, 6 for the next message, 7 to delete it, or 9 to save it. Press 0 to change your greetings, your name or your PIN. Press pound to exit.
vm-new-messages|New messages.
vm-saved-intro|Saved messages.
vm-message|Message
vm-msg-menu|Press 4 for the previous message, 5 to repeat, 6 for the next message, 7 to delete, 9 to save, star for help, or pound to exit.
vm-msg-help|4, previous message. 5, repeat this message. 6, next message. 7, delete it. 9, move it to your saved messages. 0, mailbox options. Pound, exit.
vm-first-message|This is the first message.
vm-no-more|No more messages.
vm-deleted|Message deleted.
vm-saved|Message saved.
vm-failed|Sorry, that did not work.
vm-options|Mailbox options. To record your unavailable greeting, press 1. Your busy greeting, press 2. Your name, press 3. A temporary greeting, press 4. To change your PIN, press 5. To go back, press star.
vm-rec-greeting|After the tone, record your greeting. Press pound when you have finished.
vm-rec-name|After the tone, say your name. Press pound when you have finished.
vm-greeting-review|To keep it, press 1. To record it again, press 3. To use the standard greeting instead, press 7.
vm-greeting-saved|Your greeting has been saved.
vm-greeting-standard|The standard greeting will be used.
vm-new-pin|Please enter your new PIN, then press pound.
vm-reenter-pin|Please enter the new PIN again, then press pound.
vm-pin-mismatch|The two PINs did not match.
vm-pin-refused|That PIN is not allowed. Use a longer PIN, without repeated or sequential digits, and not your mailbox number.
vm-pin-changed|Your PIN has been changed.
T

# ---- stdlib/attendant.vflow ------------------------------------------------
table "$std" <<'T'
att-welcome|Thank you for calling.
att-menu|To speak to the operator, press 0, or stay on the line. To leave a message, press 1.
att-transferring|Please hold while I transfer your call.
att-operator-unavailable|Sorry, nobody is available to take your call.
att-closed|Our office is now closed. Please leave a message after the tone, and we will call you back.
T

# ---- examples/flows ---------------------------------------------------------
table "$ex" <<'T'
rcp-welcome|Thank you for calling Northwind Trading.
rcp-menu|For our departments, press 1. If you know the extension you want, press 9. For the operator, press 0.
rcp-extension|Please enter the four digit extension.
rcp-no-such-ext|That extension could not be reached.
rcp-holiday|Our office is closed for the holidays. Please leave a message, and we will call you back when we reopen.
rcp-closed|Our office is now closed.
rcp-hours|We are open Monday to Friday from eight thirty to five thirty, with a lunch break from twelve thirty to one thirty, and on Saturday from nine to twelve. Please leave a message after the tone.
dep-menu|For sales, press 1. For support, press 2. For accounts, press 3. For the operator, press 0.
dep-connecting|Connecting you now.
dep-all-busy|All our sales staff are on other calls.
dep-goodbye|Thank you for calling. Goodbye.
q-thanks|Thank you for calling Northwind sales.
q-all-busy|All our agents are busy. Please hold, and your call will be answered in turn.
q-still-waiting|You are still in the queue. Thank you for waiting.
q-press-1|To leave a message instead, press 1.
q-sorry|We are sorry to keep you waiting so long.
sv-intro|Thank you for taking our short survey. It has two questions and takes about a minute. Press 1 to begin.
sv-q-rating|On a scale of 1 to 5, where 5 is best, how satisfied were you with our service today?
sv-rating-invalid|Please press a single key from 1 to 5.
sv-q-recommend|Would you recommend us to a friend? Press 1 for yes, or 2 for no.
sv-comment|After the tone, tell us anything else you would like us to know. Press pound when you have finished.
sv-thanks|Thank you for your answers. Goodbye.
ov-connecting|Connecting you to the front desk.
ov-closed|The front desk is closed at the moment. Please leave a message after the tone.
ov-admin-pin|Front desk administration. Please enter your PIN, then press pound.
ov-admin-menu|To keep the desk open, press 1. To close it, press 2. To follow the normal schedule, press 3. To hear the current setting, press 4. To hear the call count, press 5. To reset the call count, press 6. To finish, press pound.
ov-forced-open|The desk is open, by override.
ov-forced-closed|The desk is closed, by override.
ov-open-schedule|The desk is open, following its schedule.
ov-closed-schedule|The desk is closed, following its schedule.
ov-calls|Calls to the front desk since the last reset:
ov-calls-reset|The call count has been reset.
ov-goodbye|Goodbye.
ps-busy|I am on another call right now. Leave a message after the tone and I will call you back.
ps-colleague|Hi, leave me a message after the tone.
T

# Hold music: a slow arpeggio of plucked notes, about 6 seconds; the runtime
# loops it for as long as the wait lasts.
notes=(262 330 392 523 392 330 294 349 440 587 440 349)
parts=()
for i in "${!notes[@]}"; do
  sox -D -n -r 8000 -c 1 -b 16 -e signed-integer "$tmp/n$i.wav" synth 0.5 pluck "${notes[$i]}" fade 0 0.5 0.2 gain -10
  parts+=("$tmp/n$i.wav")
done
sox -D "${parts[@]}" "$ex/hold-music.wav"

echo "prompts: $(ls "$std" | wc -l) in stdlib/prompts, $(ls "$ex" | wc -l) in examples/flows/prompts"
