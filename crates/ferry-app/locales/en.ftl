# Ferry app: English. Every message here has a Korean twin in ko.ftl.

nav-skip = Skip to content
nav-label = Main
nav-chats = Chats
nav-invite = Add contact
nav-safety = Safety
nav-settings = Settings
nav-lock = Lock
body-new-message = New message
body-offline = The app is not answering.

setup-title = Create your profile
setup-intro = Your messages are kept only on this device, encrypted under your passphrase. Choose one nobody can guess.
setup-relay = Relay address
setup-passphrase = Passphrase (at least 8 characters)
setup-repeat = Type it again
setup-proxy = Connect through Tor or another proxy
setup-proxy-hint = Everything then goes through the proxy; if it is down, nothing goes out. Tor: socks5h://127.0.0.1:9050
setup-proxy-label = Proxy address
setup-create = Create profile

unlock-title = Unlock
unlock-passphrase = Passphrase
unlock-button = Unlock
unlock-hint = Locks itself when unused. Press Escape twice to lock and leave at once.
unlock-abandon-summary = A stow cannot finish?
unlock-abandon-label = Give up the unfinished stow and keep the account on this device
unlock-abandon-hint = Only if its relay is gone for good. If the stow did reach the relay, this device can no longer stow over it.

chats-title = Chats
chats-invite = Invite someone
chats-accept = I have a link
chats-empty = No chats yet. Invite someone or open a link you were given.
chats-compromised-banner = { $name } warned that their phone may be in someone else's hands. Do not trust new messages from them until they prove it is them.
chats-unread = { $count ->
    [one] one unread message
   *[other] { $count } unread messages
}
contact-compromised = Compromised
contact-waiting = Waiting to connect

conv-back = Back to chats
conv-timer = Disappear after
conv-message = Message
conv-view-once = View once
conv-send = Send
conv-compromised = { $name } may have lost their phone to someone else. Messages that arrived after the warning are held and marked.
conv-waiting = Waiting for the other side to connect.
conv-empty = No messages.
conv-messages = Messages
conv-flagged = Arrived after the warning: it may not be from them.
conv-voice = Voice message
conv-file = File:
conv-open-once = Open (view once)
conv-once-gone = This message is now gone from this device.
conv-close = Close
conv-expires = disappears in { $left }
conv-photo = Photo
conv-video = Video
conv-save = Save to device…
conv-save-warning = A saved copy leaves Ferry's protection: it does not disappear with the message, and anyone who searches this device can find it.
conv-save-anyway = Save the file anyway
conv-attach = Photo, video or file
conv-attach-hint = Photos and videos are sent without their place, time and camera details.
conv-send-file = Send file
conv-uploading = Sending the file
error-metadata = This kind of picture cannot be cleaned of its place and time, so it is not sent. Take a screenshot of it, or send a JPEG.
error-file_too_large = The file is too large.
error-no_attachment = That file is gone.
error-attachment_gone = The file is no longer on the relay.
error-attachment_tampered = The file was damaged or changed on the way. It is not shown.
conv-record = Record voice message
conv-record-stop = Stop and send
conv-recording = Recording…
conv-no-mic = The microphone cannot be used. Allow it for this page.
error-not_voice = The recording could not be read.
conv-info = Contact
contact-back = Back to the chat
contact-reason-duress = (They unlocked their phone with their duress passphrase.)
contact-reason-manual = (They sent the warning themselves.)
contact-reason-canary = (Their dead-man switch fired: they did not unlock in time.)
contact-reason-fork = (Someone else is writing with their keys.)
contact-safety = Safety code
contact-safety-hint = Compare it with your contact's, in person or on a call you trust. If the codes differ, someone sits between you.
contact-prove = Prove it's you
contact-prove-intro = Ask them to type the phrase they set. Your phone checks the answer; the phrase itself never travels.
contact-challenge = Ask them to prove it
contact-challenged = { $name } asks you to prove it is you.
conv-mailbox-gone = The relay no longer has your mailbox for { $name }. This account was most likely restored on another device, and this copy is out of date. If that was not you, restore the account on a device you hold, choosing to take it over.
contact-your-phrase = Your phrase
contact-answer = Answer
contact-warn = Warn this contact
contact-warn-intro = Tell this contact alone that your phone may be in someone else's hands.
contact-warn-button = Warn this contact
proof-verified = They answered with their real phrase.
proof-verified-lifted = They answered with their real phrase: the warning about them is lifted.
proof-coerced = They answered with their duress phrase: they are under pressure. Be careful what you write.
proof-failed = The answer was wrong: whoever answered does not know the phrase.
safety-phrase = "Prove it's you" phrase
safety-phrase-intro = Your contacts get checks for a phrase you remember and a duress phrase; nothing of either stays on this phone. If someone asks you to prove it is you, type the phrase; under pressure, type the duress phrase.
safety-phrase-real = Phrase
safety-phrase-duress = Duress phrase
safety-phrase-current = Current phrase (only to change it)
safety-phrase-done = Your contacts have the new checks.
error-phrase_short = Use at least 4 characters for each phrase.
error-phrase_same = The two phrases must differ.
error-no_challenge = That contact has not asked you anything.
error-phrase_needed = Type your current phrase to change it.
decoy-banner = You are preparing the decoy: what opens with the duress passphrase. Add harmless contacts and chats here. Lock to leave it.
safety-decoy = Prepare the decoy
safety-decoy-intro = Open the profile that the duress passphrase shows, to give it harmless contacts and chats so that it looks used. Set a duress passphrase first.
safety-decoy-open = Open the decoy
error-no_decoy = Set a duress passphrase first.
conv-retry = Send again
conv-delete = Delete for both

timer-off = Off
timer-30s = 30 seconds
timer-5m = 5 minutes
timer-1h = 1 hour
timer-24h = 24 hours
timer-7d = 7 days
timer-30d = 30 days
timer-seconds = { $secs } seconds
canary-72h = 72 hours

left-minutes = { $n ->
    [one] 1 minute
   *[other] { $n } minutes
}
left-hours = { $n ->
    [one] 1 hour
   *[other] { $n } hours
}
left-days = { $n ->
    [one] 1 day
   *[other] { $n } days
}

status-queued = Waiting to send
status-on-relay = On relay
status-failed = Not sent
status-sent = Sent

invite-title = Invite someone
invite-intro = You get a one-time link. Give it to one person only, face to face or through a channel you trust.
invite-alias = Name for this contact (only on this device)
invite-alias-hint = Use a name that means nothing to others.
invite-create = Create link
invite-have-link = I was given a link
invite-show = Show this code to { $name }, or send the link.
invite-qr = Invite code
invite-link = Link
invite-copy = Copy link
invite-copied = Copied
invite-done = Done
invite-once = The link works once and for 7 days.

accept-title = Open a link
accept-link = Link you were given
accept-button = Connect

settings-title = Settings
settings-display = Display
settings-language = Language
settings-theme = Theme
theme-system = Like the device
theme-light = Light
theme-dark = Dark
settings-hidden-lock = Lock when hidden for
settings-idle-lock = Lock when unused for
settings-idle-hint = Applies from the next unlock. Messages arriving do not count as use.
settings-save = Save
settings-network = Network
settings-relay = Relay

safety-title = Safety
safety-alert = Warn my contacts
safety-alert-intro = If your phone was taken or looked at, warn every contact now. They will not trust new messages from this phone until you prove it is you.
safety-alert-button = Warn everyone
safety-alert-done = Your contacts have been warned.
safety-canary = Dead-man switch
safety-canary-intro = If you do not unlock with your real passphrase in time, the relay warns your contacts for you.
safety-canary-after = Warn after
safety-canary-done = Saved.
safety-duress = Duress passphrase
safety-duress-intro = Typing it instead of your passphrase opens a harmless profile and destroys this one, warning your contacts.
safety-duress-passphrase = Duress passphrase
safety-duress-set = Set duress passphrase
safety-duress-done = The duress passphrase is set.
safety-wipe-after = Too many wrong passphrases
safety-wipe-after-label = Destroy the profile after this many wrong tries
safety-wipe-after-done = Saved.
safety-panic = Destroy everything now
safety-panic-intro = Erases this profile from the device at once. It cannot be undone.
safety-panic-button = Hold to destroy
safety-panic-hold = Press and hold for 2 seconds (mouse, touch, Space or Enter).

error-busy = The app is finishing a transfer. Try again in a moment.
error-other = Something went wrong. Try again.
error-wrong_passphrase = Wrong passphrase.
error-no_profile = There is no profile here.
error-profile_exists = A profile exists already.
error-profile_in_use = The profile is open elsewhere.
error-alias_taken = You already use that name for a contact.
error-too_many_contacts = You have too many contacts.
error-unknown_contact = No such contact.
error-not_established = The contact has not connected yet.
error-invite_expired = The link has expired.
error-invite_invalid = That is not a valid link. Check that it was copied whole.
error-contact_compromised = This contact was reported compromised: nothing is sent to them.
error-invite_used = The link was used already or withdrawn.
error-relay = The relay cannot be reached. Messages wait here and go out later.
error-relay_certificate = The relay's certificate is not trusted. Nothing was sent.
error-proxy_unreachable = The proxy cannot be reached. Nothing was sent.
error-bad_relay_url = The relay address must start with https:// (or http:// on this computer).
error-no_message = That message is gone.
error-passphrase_short = Use at least 8 characters.
error-passphrase_mismatch = The two passphrases differ.
error-bad_proxy = Give a proxy as socks5h://HOST:PORT.
error-bad_alias = Give a name of 1 to 64 characters.
error-empty = Type a message first.
error-duress_is_passphrase = The duress passphrase must differ from your passphrase.
error-duress_in_decoy = The decoy has no duress passphrase of its own. Set it from your own profile.
error-session_out_of_step = Lock and unlock again.

# Calls
call-voice = Call
call-video = Video call
call-accept = Accept
call-decline = Decline
call-hangup = Hang up
call-calling = Calling…
call-ringing = Incoming call
call-ringing-video = Incoming video call
call-connecting = Connecting…
call-connected = Connected
call-reconnecting = Reconnecting…
call-ended = Call ended
call-no-media = The microphone or camera cannot be used. Allow them for this page.
call-remote-video = Their video
call-local-video = Your video
call-log-answered = { $kind ->
    [video] Video call
   *[voice] Call
} · { $length }
call-log-missed = { $kind ->
    [video] Missed video call
   *[voice] Missed call
}
call-log-declined = { $kind ->
    [video] Video call declined
   *[voice] Call declined
}
call-log-busy = Busy: they were in another call
call-log-no-answer = No answer
call-log-cancelled = { $kind ->
    [video] Video call, cancelled
   *[voice] Call, cancelled
}
call-log-failed = The call could not be made or was cut
call-log-refused = Call refused: this contact was reported compromised
error-call_busy = You are already in a call.
error-no_call = That call is over.
error-call_refused = The call was refused: it would have revealed an address, or it did not come through the relay.
error-calls_need_direct = Calls are off while a proxy is set: audio and video cannot go through Tor or a SOCKS proxy, and would reveal your address to the relay.
error-no_turn = The call could not reach the relay's call server. Try again.

# Stow and restore
stow-title = Stow the account
stow-intro = Take the whole account off this device (contacts, conversations, settings) and keep it on the relay under your recovery phrase. At night, restore it here or on another phone.
stow-phrase = Your recovery phrase (all 12 words)
stow-pin = PIN (only if you set one)
stow-with-history = Keep past messages too
stow-hint = Without this, past messages are destroyed. Everything of Ferry on this device is destroyed after the relay has the copy.
stow-button = Stow now
recovery-hint = First make a recovery phrase: 12 words that bring the account back. You need it, your passphrase and the relay address to restore.
recovery-new = Make a recovery phrase
recovery-title = Your recovery phrase
recovery-write = Write these 12 words on paper, in order, and keep the paper away from the phone. They are shown only now.
recovery-confirm = To check you wrote them down, type these words:
recovery-word = Word { $n }
recovery-pin = PIN (optional)
recovery-pin-hint = A PIN is needed to restore too. After 10 wrong PINs the relay deletes the stowed account.
recovery-witnesses = Witness relays (optional)
recovery-witnesses-label = Other relays' addresses, one per line
recovery-witnesses-hint = Each keeps only the account's version number, so a restore notices a relay that serves an older copy. A restore then needs them reachable.
recovery-done = Keep this phrase
stowed-title = Stowed
stowed-text = The account is on the relay and nothing of it is left on this device. You can close this page.
stowed-deadline = Restore before this time: after it, attachments sent to you meanwhile start to expire, or your contacts are warned:
stowed-restore = To restore: open Ferry, choose "Restore", type the 12 words, the relay address and your passphrase.
restore-title = Restore a stowed account
restore-intro = Bring back an account you stowed, from its recovery phrase.
restore-phrase = Recovery phrase (12 words)
restore-takeover = The account is open on another device that I no longer have: take it over (that device is shut out)
restore-button = Restore
error-bad_phrase = That is not a recovery phrase: check the 12 words and their order.
error-phrase_words = Those words do not match. Look at the phrase again.
error-phrase_not_this = That is not the recovery phrase set up for this account. Nothing was stowed.
error-no_recovery = Make a recovery phrase first.
error-no_stow = Nothing is stowed under this phrase at this relay. Check the words and the relay address.
error-stow_leased = This account is open on another device. Stow it there first, or take it over.
error-stow_taken_over = This account was taken over by another device; this copy cannot be stowed.
error-stow_conflict = The relay holds a newer copy of this account than this device.
error-stow_unfinished = The relay did not confirm the copy. Try again when it is reachable; nothing else runs until then. If the relay is gone for good, give the stow up (under "A stow cannot finish?").
error-stowed = This account had been stowed; it is gone from this device now.
error-wrong_pin = Wrong PIN. After 10 wrong PINs the stowed account is deleted.
error-restore_unfinished = A restore did not finish. Restore again with the same phrase.
error-stow_stale = The relay served an older copy of the account than another relay has seen. Nothing was installed.
error-witness_unreachable = The relay that keeps the account's version cannot be reached. Nothing was installed; try again later.
error-stow_damaged = The stored account is damaged or does not open with this phrase.

group-new = New group
group-name = Group name
group-name-hint = Only on this device. The people you add are offered it.
group-display = Your name in this group
group-display-hint = The members see it. Leave it empty for a name that says nothing about you.
group-add = Add people
group-add-button = Add
group-create = Create the group
group-no-contacts = You have no contacts to add yet.
group-members = Members
group-members-count = { $count ->
    [one] 1 member
   *[other] { $count } members
}
group-joining = { $count ->
    [one] One person is joining: they are in once their device and yours have been online.
   *[other] { $count } people are joining: they are in once their devices and yours have been online.
}
group-owner = Owner
group-admin = Admin
group-member = Member
group-you = You
group-your-contact = your contact { $name }
group-remove = Remove
group-leave = Leave the group
group-flagged = This member was reported compromised: it may not be from them.
error-unknown_group = No such group.
error-not_group_admin = Only an admin of this group can do that.
error-unknown_member = No such member.
error-ambiguous_member = Several members have that name.
error-already_member = Already in the group or joining.
error-group_full = The group is full.
error-too_many_groups = You are in as many groups as Ferry keeps.
error-last_owner = You are the last owner. Make someone else owner first.
error-group_choose = Choose at least one person.
