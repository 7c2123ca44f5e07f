# Ferry 앱: 한국어. 여기의 모든 메시지는 en.ftl에 영어 짝이 있습니다.

nav-skip = 본문으로 건너뛰기
nav-label = 주 메뉴
nav-chats = 대화
nav-invite = 연락처 추가
nav-safety = 안전
nav-settings = 설정
nav-lock = 잠그기
body-new-message = 새 메시지
body-offline = 앱이 응답하지 않습니다.

setup-title = 프로필 만들기
setup-intro = 메시지는 이 기기에만, 암호문구로 암호화되어 보관됩니다. 아무도 짐작할 수 없는 것으로 정하세요.
setup-relay = 릴레이 주소
setup-passphrase = 암호문구 (8자 이상)
setup-repeat = 한 번 더 입력
setup-proxy = Tor나 다른 프록시로 연결
setup-proxy-hint = 모든 연결이 프록시를 거칩니다. 프록시가 꺼져 있으면 아무것도 나가지 않습니다. Tor: socks5h://127.0.0.1:9050
setup-proxy-label = 프록시 주소
setup-create = 프로필 만들기

unlock-title = 잠금 해제
unlock-passphrase = 암호문구
unlock-button = 잠금 해제
unlock-hint = 사용하지 않으면 저절로 잠깁니다. Esc를 두 번 누르면 바로 잠그고 나갑니다.
unlock-abandon-summary = 보관이 끝나지 않나요?
unlock-abandon-label = 끝나지 않은 보관을 포기하고 계정을 이 기기에 둡니다
unlock-abandon-hint = 중계 서버가 아주 사라졌을 때만 쓰세요. 보관본이 이미 중계 서버에 닿았다면, 이 기기에서는 그 위에 다시 보관할 수 없습니다.

chats-title = 대화
chats-invite = 초대하기
chats-accept = 링크를 받았어요
chats-empty = 아직 대화가 없습니다. 누군가를 초대하거나 받은 링크를 여세요.
chats-compromised-banner = { $name }님이 휴대폰이 다른 사람 손에 넘어갔을 수 있다고 알렸습니다. 본인임을 증명하기 전까지 새 메시지를 믿지 마세요.
chats-unread = 읽지 않은 메시지 { $count }개
contact-compromised = 위험
contact-waiting = 연결 대기 중

conv-back = 대화 목록으로
conv-timer = 사라지는 시간
conv-message = 메시지
conv-view-once = 한 번만 보기
conv-send = 보내기
conv-compromised = { $name }님이 휴대폰을 다른 사람에게 빼앗겼을 수 있습니다. 경고 뒤에 온 메시지는 보류되고 표시됩니다.
conv-waiting = 상대방의 연결을 기다리고 있습니다.
conv-empty = 메시지가 없습니다.
conv-messages = 메시지
conv-flagged = 경고 뒤에 도착: 본인이 보낸 것이 아닐 수 있습니다.
conv-voice = 음성 메시지
conv-file = 파일:
conv-open-once = 열기 (한 번만 보기)
conv-once-gone = 이 메시지는 이제 이 기기에서 사라졌습니다.
conv-close = 닫기
conv-expires = { $left } 뒤 사라짐
conv-photo = 사진
conv-video = 동영상
conv-save = 기기에 저장…
conv-save-warning = 저장한 사본은 Ferry의 보호를 벗어납니다. 메시지와 함께 사라지지 않고, 이 기기를 뒤지는 사람은 누구나 찾을 수 있습니다.
conv-save-anyway = 그래도 파일 저장
conv-attach = 사진, 동영상 또는 파일
conv-attach-hint = 사진과 동영상은 장소, 시간, 카메라 정보를 지우고 보냅니다.
conv-send-file = 파일 보내기
conv-uploading = 파일 보내는 중
error-metadata = 이런 사진은 장소와 시간 정보를 지울 수 없어서 보내지 않습니다. 화면을 캡처하거나 JPEG로 보내세요.
error-file_too_large = 파일이 너무 큽니다.
error-no_attachment = 그 파일은 사라졌습니다.
error-attachment_gone = 파일이 이제 릴레이에 없습니다.
error-attachment_tampered = 파일이 오는 도중 손상되거나 바뀌었습니다. 보여 주지 않습니다.
conv-record = 음성 메시지 녹음
conv-record-stop = 멈추고 보내기
conv-recording = 녹음 중…
conv-no-mic = 마이크를 쓸 수 없습니다. 이 페이지에 마이크를 허용하세요.
error-not_voice = 녹음을 읽을 수 없습니다.
conv-info = 연락처
contact-back = 대화로 돌아가기
contact-reason-duress = (위급 암호문구로 휴대폰 잠금을 풀었습니다.)
contact-reason-manual = (본인이 직접 경고를 보냈습니다.)
contact-reason-canary = (안전 확인 장치가 작동했습니다: 제때 잠금을 풀지 않았습니다.)
contact-reason-fork = (다른 누군가가 그 사람의 키로 쓰고 있습니다.)
contact-safety = 안전 코드
contact-safety-hint = 직접 만나거나 믿을 수 있는 통화로 상대방의 코드와 비교하세요. 코드가 다르면 누군가 중간에 끼어 있습니다.
contact-prove = 본인 확인
contact-prove-intro = 상대방에게 정해 둔 문구를 입력하게 하세요. 답은 내 휴대폰이 확인하고, 문구 자체는 전송되지 않습니다.
contact-challenge = 본인 확인 요청
contact-challenged = { $name }님이 본인임을 증명해 달라고 합니다.
conv-mailbox-gone = 중계 서버에 { $name }님과의 우편함이 더 이상 없습니다. 이 계정이 다른 기기에서 복원되었을 가능성이 높고, 이 사본은 오래된 것입니다. 본인이 한 일이 아니라면 갖고 있는 기기에서 "가져오기"를 골라 계정을 복원하세요.
contact-your-phrase = 내 문구
contact-answer = 답하기
contact-warn = 이 연락처에 경고
contact-warn-intro = 내 휴대폰이 다른 사람 손에 있을 수 있다고 이 연락처에게만 알립니다.
contact-warn-button = 이 연락처에 경고
proof-verified = 진짜 문구로 답했습니다.
proof-verified-lifted = 진짜 문구로 답했습니다. 이 사람에 대한 경고를 해제했습니다.
proof-coerced = 위급 문구로 답했습니다. 압박을 받고 있습니다. 쓰는 내용에 조심하세요.
proof-failed = 틀린 답입니다. 답한 사람은 문구를 모릅니다.
safety-phrase = 본인 확인 문구
safety-phrase-intro = 연락처들은 내가 기억하는 문구와 위급 문구를 확인할 수 있는 정보를 받습니다. 둘 다 이 휴대폰에는 남지 않습니다. 본인 확인을 요청받으면 문구를, 압박을 받고 있으면 위급 문구를 입력하세요.
safety-phrase-real = 문구
safety-phrase-duress = 위급 문구
safety-phrase-current = 지금 문구 (바꿀 때만)
safety-phrase-done = 연락처들이 새 확인 정보를 받았습니다.
error-phrase_short = 문구는 각각 4자 이상 쓰세요.
error-phrase_same = 두 문구는 달라야 합니다.
error-no_challenge = 그 연락처는 아무것도 요청하지 않았습니다.
error-phrase_needed = 문구를 바꾸려면 지금 문구를 입력하세요.
decoy-banner = 가짜 프로필을 준비하고 있습니다: 위급 암호문구로 열리는 프로필입니다. 여기에 무해한 연락처와 대화를 넣으세요. 잠그면 나갑니다.
safety-decoy = 가짜 프로필 준비
safety-decoy-intro = 위급 암호문구로 열리는 프로필을 열어, 실제로 쓰는 것처럼 보이도록 무해한 연락처와 대화를 넣습니다. 먼저 위급 암호문구를 설정하세요.
safety-decoy-open = 가짜 프로필 열기
error-no_decoy = 먼저 위급 암호문구를 설정하세요.
conv-retry = 다시 보내기
conv-delete = 모두에게서 삭제

timer-off = 끄기
timer-30s = 30초
timer-5m = 5분
timer-1h = 1시간
timer-24h = 24시간
timer-7d = 7일
timer-30d = 30일
timer-seconds = { $secs }초
canary-72h = 72시간

left-minutes = { $n }분
left-hours = { $n }시간
left-days = { $n }일

status-queued = 보내기 대기
status-on-relay = 릴레이에 있음
status-failed = 보내지 못함
status-sent = 보냄

invite-title = 초대하기
invite-intro = 한 번만 쓸 수 있는 링크가 만들어집니다. 한 사람에게만, 직접 만나서 또는 믿을 수 있는 경로로 주세요.
invite-alias = 이 연락처의 이름 (이 기기에만 저장)
invite-alias-hint = 다른 사람에게 아무 의미 없는 이름을 쓰세요.
invite-create = 링크 만들기
invite-have-link = 링크를 받았어요
invite-show = 이 코드를 { $name }님에게 보여 주거나 링크를 보내세요.
invite-qr = 초대 코드
invite-link = 링크
invite-copy = 링크 복사
invite-copied = 복사됨
invite-done = 완료
invite-once = 이 링크는 한 번만, 7일 동안 쓸 수 있습니다.

accept-title = 링크 열기
accept-link = 받은 링크
accept-button = 연결하기

settings-title = 설정
settings-display = 화면
settings-language = 언어
settings-theme = 테마
theme-system = 기기 설정대로
theme-light = 밝게
theme-dark = 어둡게
settings-hidden-lock = 화면이 가려진 뒤 잠글 때까지
settings-idle-lock = 사용하지 않으면 잠글 때까지
settings-idle-hint = 다음 잠금 해제부터 적용됩니다. 메시지가 도착하는 것은 사용으로 치지 않습니다.
settings-save = 저장
settings-network = 네트워크
settings-relay = 릴레이

safety-title = 안전
safety-alert = 연락처에 경고하기
safety-alert-intro = 휴대폰을 빼앗기거나 누가 들여다봤다면 지금 모든 연락처에 경고하세요. 본인임을 증명하기 전까지 이 휴대폰에서 오는 새 메시지를 믿지 않게 됩니다.
safety-alert-button = 모두에게 경고
safety-alert-done = 연락처에 경고를 보냈습니다.
safety-canary = 안전 확인 장치
safety-canary-intro = 정해진 시간 안에 진짜 암호문구로 잠금을 풀지 않으면 릴레이가 대신 연락처에 경고합니다.
safety-canary-after = 경고까지
safety-canary-done = 저장했습니다.
safety-duress = 위급 암호문구
safety-duress-intro = 암호문구 대신 이것을 입력하면 아무 문제 없는 프로필이 열리고, 이 프로필은 지워지며 연락처에 경고가 갑니다.
safety-duress-passphrase = 위급 암호문구
safety-duress-set = 위급 암호문구 설정
safety-duress-done = 위급 암호문구를 설정했습니다.
safety-wipe-after = 암호문구를 여러 번 틀리면
safety-wipe-after-label = 이 횟수만큼 틀리면 프로필을 지웁니다
safety-wipe-after-done = 저장했습니다.
safety-panic = 지금 모두 지우기
safety-panic-intro = 이 기기에서 프로필을 즉시 지웁니다. 되돌릴 수 없습니다.
safety-panic-button = 길게 눌러 지우기
safety-panic-hold = 2초 동안 누르고 계세요 (마우스, 터치, 스페이스 또는 엔터).

error-busy = 앱이 전송을 마무리하고 있습니다. 잠시 뒤에 다시 해 보세요.
error-other = 문제가 생겼습니다. 다시 해 보세요.
error-wrong_passphrase = 암호문구가 틀렸습니다.
error-no_profile = 여기에는 프로필이 없습니다.
error-profile_exists = 프로필이 이미 있습니다.
error-profile_in_use = 프로필이 다른 곳에서 열려 있습니다.
error-alias_taken = 이미 다른 연락처에 쓰는 이름입니다.
error-too_many_contacts = 연락처가 너무 많습니다.
error-unknown_contact = 그런 연락처가 없습니다.
error-not_established = 상대방이 아직 연결하지 않았습니다.
error-invite_expired = 링크가 만료되었습니다.
error-invite_invalid = 올바른 링크가 아닙니다. 전부 복사했는지 확인하세요.
error-contact_compromised = 위험하다고 알려진 연락처입니다. 아무것도 보내지 않습니다.
error-invite_used = 이미 사용되었거나 취소된 링크입니다.
error-relay = 릴레이에 연결할 수 없습니다. 메시지는 여기서 기다렸다가 나중에 나갑니다.
error-relay_certificate = 릴레이의 인증서를 믿을 수 없습니다. 아무것도 보내지 않았습니다.
error-proxy_unreachable = 프록시에 연결할 수 없습니다. 아무것도 보내지 않았습니다.
error-bad_relay_url = 릴레이 주소는 https://로 시작해야 합니다 (이 컴퓨터 안이면 http://).
error-no_message = 그 메시지는 사라졌습니다.
error-passphrase_short = 8자 이상 쓰세요.
error-passphrase_mismatch = 두 암호문구가 다릅니다.
error-bad_proxy = 프록시는 socks5h://호스트:포트 형식으로 쓰세요.
error-bad_alias = 1자에서 64자 사이의 이름을 쓰세요.
error-empty = 먼저 메시지를 입력하세요.
error-duress_is_passphrase = 위급 암호문구는 암호문구와 달라야 합니다.
error-duress_in_decoy = 가짜 프로필에는 위급 암호문구를 따로 둘 수 없습니다. 본인 프로필에서 설정하세요.
error-session_out_of_step = 잠갔다가 다시 여세요.

# Calls
call-voice = 전화
call-video = 영상 통화
call-accept = 받기
call-decline = 거절
call-hangup = 끊기
call-calling = 거는 중…
call-ringing = 전화가 왔습니다
call-ringing-video = 영상 통화가 왔습니다
call-connecting = 연결 중…
call-connected = 연결됨
call-reconnecting = 다시 연결 중…
call-ended = 통화 종료
call-no-media = 마이크나 카메라를 쓸 수 없습니다. 이 페이지에 허용해 주세요.
call-remote-video = 상대 영상
call-local-video = 내 영상
call-log-answered = { $kind ->
    [video] 영상 통화
   *[voice] 통화
} · { $length }
call-log-missed = { $kind ->
    [video] 부재중 영상 통화
   *[voice] 부재중 전화
}
call-log-declined = { $kind ->
    [video] 거절한 영상 통화
   *[voice] 거절한 전화
}
call-log-busy = 상대가 다른 통화 중이었습니다
call-log-no-answer = 받지 않음
call-log-cancelled = { $kind ->
    [video] 취소한 영상 통화
   *[voice] 취소한 전화
}
call-log-failed = 통화를 연결하지 못했거나 끊겼습니다
call-log-refused = 전화 거부됨: 이 연락처는 위험 신고가 되어 있습니다
error-call_busy = 이미 통화 중입니다.
error-no_call = 그 통화는 끝났습니다.
error-call_refused = 통화를 거부했습니다: 주소가 드러나거나 중계 서버를 거치지 않는 연결이었습니다.
error-calls_need_direct = 프록시를 쓰는 동안에는 통화할 수 없습니다: 음성과 영상은 Tor나 SOCKS 프록시를 거칠 수 없어 중계 서버에 내 주소가 드러납니다.
error-no_turn = 중계 서버의 통화 서버에 연결하지 못했습니다. 다시 시도해 주세요.

# 보관과 복원
stow-title = 계정 보관
stow-intro = 계정 전체(연락처, 대화, 설정)를 이 기기에서 없애고 복구 문구로 중계 서버에 맡깁니다. 밤에 이 기기나 다른 전화기에서 되살릴 수 있습니다.
stow-phrase = 복구 문구 (12단어 모두)
stow-pin = PIN (설정한 경우에만)
stow-with-history = 지난 메시지도 함께 보관
stow-hint = 선택하지 않으면 지난 메시지는 파기됩니다. 중계 서버가 사본을 받은 뒤 이 기기의 Ferry 자료는 모두 파기됩니다.
stow-button = 지금 보관
recovery-hint = 먼저 복구 문구를 만드세요: 계정을 되살리는 12단어입니다. 복원하려면 이 문구, 암호문구, 중계 서버 주소가 필요합니다.
recovery-new = 복구 문구 만들기
recovery-title = 복구 문구
recovery-write = 이 12단어를 순서대로 종이에 적어 전화기와 떨어진 곳에 두세요. 지금 한 번만 보여 줍니다.
recovery-confirm = 적었는지 확인하려고 다음 단어를 입력해 주세요:
recovery-word = { $n }번째 단어
recovery-pin = PIN (선택)
recovery-pin-hint = 복원할 때도 PIN이 필요합니다. PIN을 10번 틀리면 중계 서버가 보관된 계정을 지웁니다.
recovery-witnesses = 증인 중계 서버 (선택)
recovery-witnesses-label = 다른 중계 서버 주소, 한 줄에 하나씩
recovery-witnesses-hint = 각 서버는 계정의 버전 번호만 보관하므로, 복원할 때 더 오래된 사본을 내주는 중계 서버를 알아챌 수 있습니다. 그 대신 복원할 때 이 서버들에 연결되어야 합니다.
recovery-done = 이 문구로 정하기
stowed-title = 보관했습니다
stowed-text = 계정은 중계 서버에 있고 이 기기에는 아무것도 남지 않았습니다. 이 페이지를 닫아도 됩니다.
stowed-deadline = 이 시각 전에 복원하세요. 그 뒤에는 그동안 받은 첨부 파일이 사라지기 시작하거나 연락처들에게 경고가 갑니다:
stowed-restore = 복원하려면: Ferry를 열고 "복원"에서 12단어, 중계 서버 주소, 암호문구를 입력하세요.
restore-title = 보관한 계정 복원
restore-intro = 보관해 둔 계정을 복구 문구로 되살립니다.
restore-phrase = 복구 문구 (12단어)
restore-takeover = 이 계정이 이제 갖고 있지 않은 다른 기기에 열려 있습니다: 가져오기 (그 기기는 차단됩니다)
restore-button = 복원
error-bad_phrase = 복구 문구가 아닙니다: 12단어와 순서를 확인하세요.
error-phrase_words = 단어가 맞지 않습니다. 문구를 다시 보세요.
error-phrase_not_this = 이 계정에 정한 복구 문구가 아닙니다. 보관하지 않았습니다.
error-no_recovery = 먼저 복구 문구를 만드세요.
error-no_stow = 이 중계 서버에 이 문구로 보관된 계정이 없습니다. 단어와 중계 서버 주소를 확인하세요.
error-stow_leased = 이 계정은 다른 기기에서 열려 있습니다. 그 기기에서 먼저 보관하거나 가져오기를 선택하세요.
error-stow_taken_over = 다른 기기가 이 계정을 가져갔습니다. 이 사본은 보관할 수 없습니다.
error-stow_conflict = 중계 서버에 이 기기보다 새로운 사본이 있습니다.
error-stow_unfinished = 중계 서버가 사본을 확인해 주지 않았습니다. 연결되면 다시 시도하세요. 그때까지 다른 일은 하지 않습니다. 중계 서버가 아주 사라졌다면 "보관이 끝나지 않나요?"에서 보관을 포기하세요.
error-stowed = 이 계정은 보관되었고 이제 이 기기에 없습니다.
error-wrong_pin = PIN이 틀렸습니다. 10번 틀리면 보관된 계정이 지워집니다.
error-restore_unfinished = 복원이 끝나지 않았습니다. 같은 문구로 다시 복원하세요.
error-stow_stale = 중계 서버가 다른 중계 서버가 본 것보다 오래된 사본을 주었습니다. 아무것도 설치하지 않았습니다.
error-witness_unreachable = 계정 버전을 확인해 주는 중계 서버에 연결할 수 없습니다. 아무것도 설치하지 않았습니다. 나중에 다시 시도하세요.
error-stow_damaged = 보관된 계정이 손상되었거나 이 문구로 열리지 않습니다.
