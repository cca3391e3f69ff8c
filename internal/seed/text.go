package seed

import (
	"math/rand/v2"
	"strings"
)

// words is the vocabulary of generated titles, bodies and tags.
var words = strings.Fields(`
	ability access account action active actor address advice agent algorithm amount analysis angle
	answer api apple archive area argument array art article aspect audio author average balance
	band base basis battle beach bear beauty bench bird block board boat body book border bottle
	branch bread bridge browser budget buffer bug cable cache camera campaign canvas capital card
	career case castle cause cell center chain chance change channel chapter charge chart cheese
	choice circle city claim class client climate cloud cluster coast code coffee color column
	comment common company compiler concept config context contract control cookie copy core
	corner cost counter country course craft crowd culture cursor customer cycle data database
	deadline debate debug decision degree delay design detail device diagram dinner disk
	distance doctor domain draft dream driver editor effect energy engine error event example
	factor family feature feed field figure filter finance flag flight floor flow focus forest
	format frame friend function future game garden gateway goal graph group growth guide habit
	hardware header health heart history hook host house idea image impact index input insight
	island issue item journey kernel key kitchen label language layer leader library light limit
	link list load lock logic loop machine manager map market matrix memory message method metric
	middle mind mobile model module moment money monitor morning mountain music network news node
	note number object ocean offer office option order origin output owner package page panel
	paper parser partner path pattern payment people period pipeline pixel plan platform player
	plugin pocket point policy pool portal power practice price process product profile program
	project protocol proxy query queue quote radio range reader reason record region release
	report request research resource result review river robot route router rule runtime safety
	sample scale schema science screen script search season secret section sensor server service
	session shadow shape signal silence simple sketch socket software solution source space speed
	spring stack stage standard state station storage store story stream street string studio
	style summer switch symbol system table target task team template test theory thread ticket
	timer token tool topic tower track traffic train tree trend trigger type union update user
	value vector version video view village vision voice volume wallet water wave window winter
	worker world writer`)

// sentence appends n random words, capitalised, ending with a full stop.
func sentence(b []byte, r *rand.Rand, n int) []byte {
	for i := range n {
		w := words[r.IntN(len(words))]
		if i == 0 {
			b = append(b, w[0]-'a'+'A')
			b = append(b, w[1:]...)
			continue
		}
		b = append(b, ' ')
		b = append(b, w...)
	}
	return append(b, '.')
}

// title returns n random words with the first capitalised.
func title(r *rand.Rand, n int) string {
	b := sentence(make([]byte, 0, 64), r, n)
	return string(b[:len(b)-1])
}

// paragraphs returns p paragraphs of random sentences.
func paragraphs(r *rand.Rand, p int) string {
	b := make([]byte, 0, 512)
	for i := range p {
		if i > 0 {
			b = append(b, "\n\n"...)
		}
		for j := range 2 + r.IntN(4) {
			if j > 0 {
				b = append(b, ' ')
			}
			b = sentence(b, r, 6+r.IntN(9))
		}
	}
	return string(b)
}

// tagNames returns n distinct tag names made from the vocabulary.
func tagNames(n int) []string {
	out := make([]string, n)
	w := len(words)
	for i := range out {
		if i < w {
			out[i] = words[i]
			continue
		}
		out[i] = words[i%w] + "-" + words[(i/w)%w]
	}
	return out
}
